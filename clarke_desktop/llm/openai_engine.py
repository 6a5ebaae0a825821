"""LlmEngine over an OpenAI-compatible server on the clinic network (llama-server, vLLM,
llama-cpp-python's server), so several workstations can share one GPU box.

Turns are sent as chat messages (user/assistant, no system role) with every text neutralised:
the server renders its chat template and tokenises the result *with* special tokens, so this is
where control-token injection would otherwise happen. Streaming uses SSE; JSON uses
`response_format` ({"type": "json_object", "schema": ...} for llama.cpp servers, which silently
ignore "json_schema"; {"type": "json_schema", ...} for vLLM/OpenAI) and is always validated.
Token budgets are checked before sending: llama-cpp-python's server would otherwise silently
shorten `max_tokens` to fit its context.

Prefix caching is the server's: every request asks for it (`"cache_prompt": true`, which
llama-server honours and other servers ignore), and prompts are sent so that it can work: a
letter's sections share their instructions, record and transcript word for word at the start of
the one user message, and only the section's own request differs at the end (`Turn.shared_prefix`
marks it; nothing varying, such as a time, ever precedes it). The server decides what it reuses:
for Gemma 3's sliding-window layers llama-server reuses a prefix with `--swa-full` (its context
checkpoints are taken at the end of a whole prompt, past the shared part); vLLM with automatic
prefix caching. Where the server reports it (llama-server's `timings`), `thread_stats` says how
many prompt tokens it really read. `set_prefix_reuse(False)` sends `"cache_prompt": false`.
The sections are asked for one after another (this engine does not offer `stream_together`):
sent at once, each would land in its own server slot and read the shared start again there.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx

from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.llm.base import ContextTooLong, LlmEngine, LlmError, ModelOutOfMemory, T, Turn
from clarke_desktop.llm.prompt import neutralise, render_text, split_thinking, validate_turns
from clarke_desktop.llm.streaming import GenerationStats, TextPipeline
from clarke_desktop.llm.structured import json_schema, validate_with_retries
from clarke_desktop.schemas import ModelInfo

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 8192
_TEMPLATE_MARGIN = 16  # the server's chat template may add a few tokens our rendering does not


class OpenAICompatEngine(LlmEngine):
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        role: str = "ehr_agent",
        context_length: int | None = None,
        json_mode: Literal["json_object", "json_schema"] = "json_object",
        demo: bool = False,
        timeout_s: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self.model = model
        self._json_mode = json_mode
        self._context_length = context_length
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0)
        )
        self._tokenize_route: str | None = None
        self._count_cache: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self._prefix_reuse = True
        self._this_thread = threading.local()  # the stats of each thread's last stream
        self.info = ModelInfo(name=model, role=role, backend="openai-compatible", demo=demo)

    # -- budgets ---------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        if self._context_length is None:
            self._context_length = self._discover_context_length()
        return self._context_length

    def _discover_context_length(self) -> int:
        # llama-server: /props; vLLM: max_model_len in /v1/models; llama-cpp-python: neither.
        try:
            props = self._client.get("/props")
            if props.status_code == 200:
                n_ctx = props.json().get("default_generation_settings", {}).get("n_ctx")
                if n_ctx:
                    return int(n_ctx)
            models = self._client.get("/v1/models")
            if models.status_code == 200:
                for entry in models.json().get("data", []):
                    if entry.get("id") == self.model and entry.get("max_model_len"):
                        return int(entry["max_model_len"])
        except (httpx.HTTPError, ValueError) as exc:
            raise LlmError(f"cannot reach the LLM server at {self.base_url}: {exc}") from exc
        logger.warning(
            "LLM server at %s does not report its context length; assuming %d (set it explicitly)",
            self.base_url,
            DEFAULT_CONTEXT,
        )
        return DEFAULT_CONTEXT

    def count_tokens(self, text: str) -> int:
        return self._count(neutralise(text))

    def _count(self, text: str) -> int:
        # Callers measure many small pieces (splitting a transcript): remember recent answers
        # instead of a network round trip for each (memory only, bounded).
        cached = self._count_cache.get(text)
        if cached is None:
            cached = self._count_remote(text)
            with self._count_lock:
                if len(self._count_cache) >= 4096:
                    self._count_cache.pop(next(iter(self._count_cache)))
                self._count_cache[text] = cached
        return cached

    def _count_remote(self, text: str) -> int:
        routes = [self._tokenize_route] if self._tokenize_route else ["/tokenize", "/extras/tokenize"]
        for route in routes:
            body = {"content": text, "add_special": False} if route == "/tokenize" else {"input": text}
            try:
                response = self._client.post(route, json=body)
            except httpx.HTTPError as exc:
                raise LlmError(f"cannot reach the LLM server at {self.base_url}: {exc}") from exc
            if response.status_code == 200:
                tokens = response.json().get("tokens")
                if isinstance(tokens, list):
                    self._tokenize_route = route
                    return len(tokens)
        raise LlmError(
            f"the LLM server at {self.base_url} offers no tokenize endpoint, so token budgets "
            "cannot be checked; use llama-server, vLLM or llama-cpp-python's server"
        )

    def _check_budget(self, turns: list[Turn], max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        prompt = self._count(render_text(turns)) + _TEMPLATE_MARGIN
        limit = self.context_length
        if prompt + max_tokens > limit:
            raise ContextTooLong(
                f"the prompt is about {prompt} tokens and {max_tokens} more were requested, "
                f"{prompt + max_tokens} in all, but {self.model} on {self.base_url} holds {limit}; "
                "shorten the input or split it (nothing was cut)"
            )

    # -- prefix reuse and what the server reports ----------------------------------------------

    @property
    def prefix_reuse(self) -> bool:
        return self._prefix_reuse

    def set_prefix_reuse(self, enabled: bool) -> None:
        """Ask the server to reuse its cached prompt prefix (the default) or not (for comparison)."""
        self._prefix_reuse = enabled

    @property
    def thread_stats(self) -> GenerationStats | None:
        """What the server reported about the calling thread's last stream (prompt tokens read and
        reused, tokens generated), or None when it reported nothing (llama-cpp-python, vLLM)."""
        stats: GenerationStats | None = getattr(self._this_thread, "stats", None)
        return stats

    # -- requests --------------------------------------------------------------------------------

    @staticmethod
    def _messages(turns: list[Turn]) -> list[dict[str, str]]:
        validate_turns(turns)
        if turns[-1].role != "user":
            raise ValueError("an OpenAI-compatible server cannot continue a model turn; end with a user turn")
        return [
            {"role": "user" if t.role == "user" else "assistant", "content": neutralise(t.text)}
            for t in turns
        ]

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            response.read()
            payload = response.json()
            error = payload.get("error", payload) if isinstance(payload, dict) else {}
            message = str(error.get("message") or payload)[:300]
            code = str(error.get("code") or "")
        except (ValueError, AttributeError):
            message, code = response.text[:300], ""
        lowered = message.lower()
        if (
            code == "context_length_exceeded"
            or "context" in lowered
            and ("exceed" in lowered or "maximum" in lowered)
        ):
            raise ContextTooLong(f"{self.model} on {self.base_url}: {message}")
        if "out of memory" in lowered:
            raise ModelOutOfMemory(f"{self.model} on {self.base_url} ran out of memory: {message}")
        if response.status_code in (401, 403):
            raise LlmError(f"the LLM server at {self.base_url} refused the API key ({response.status_code})")
        raise LlmError(f"the LLM server at {self.base_url} answered {response.status_code}: {message}")

    def stream(
        self,
        turns: list[Turn],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        stop: list[str] | None = None,
        cancel: CancelToken | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        messages = self._messages(turns)
        self._check_budget(turns, max_tokens)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "cache_prompt": self._prefix_reuse,
        }
        if stop:
            body["stop"] = stop
        return self._stream_events(body, TextPipeline(stop, on_thinking), cancel, on_thinking)

    def _stream_events(
        self,
        body: dict[str, Any],
        pipeline: TextPipeline,
        cancel: CancelToken | None,
        on_thinking: Callable[[str], None] | None,
    ) -> Iterator[str]:
        self._this_thread.stats = None
        try:
            with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                self._raise_for(response)
                for line in response.iter_lines():
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()  # leaving the block closes the connection: the server stops
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        break
                    reported = _server_stats(data)
                    if reported is not None:
                        self._this_thread.stats = reported
                    delta = _delta(data)
                    if "error" in delta:  # llama-server reports mid-stream failures as an event
                        raise LlmError(f"the LLM server at {self.base_url} failed: {delta['error']}")
                    if delta.get("reasoning_content") and on_thinking is not None:
                        on_thinking(delta["reasoning_content"])
                    out = pipeline.feed(delta.get("content") or "")
                    if out:
                        yield out
                    if pipeline.stopped:
                        break
        except httpx.HTTPError as exc:
            raise LlmError(f"lost the LLM server at {self.base_url}: {exc}") from exc
        tail = pipeline.finish()
        if tail:
            yield tail

    def generate_json(
        self,
        turns: list[Turn],
        schema: type[T],
        *,
        max_tokens: int,
        retries: int = 1,
        cancel: CancelToken | None = None,
    ) -> T:
        messages = self._messages(turns)
        self._check_budget(turns, max_tokens)
        if self._json_mode == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": json_schema(schema), "strict": True},
            }
        else:
            response_format = {"type": "json_object", "schema": json_schema(schema)}

        def attempt(_index: int, temperature: float) -> str:
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            body = {
                "model": self.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "response_format": response_format,
                "stream": False,
                "cache_prompt": self._prefix_reuse,
            }
            try:
                response = self._client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                raise LlmError(f"cannot reach the LLM server at {self.base_url}: {exc}") from exc
            self._raise_for(response)
            try:
                content = response.json()["choices"][0]["message"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise LlmError(f"the LLM server at {self.base_url} sent an unreadable answer") from exc
            answer, _thinking = _split(content)
            return answer

        return validate_with_retries(attempt, schema, retries=retries, model_name=self.model)

    def close(self) -> None:
        self._client.close()


def _delta(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
        if isinstance(event, dict) and event.get("error"):
            error = event["error"]
            return {"error": str(error.get("message", error) if isinstance(error, dict) else error)[:300]}
        choices = event.get("choices") or []
        return choices[0].get("delta") or {} if choices else {}
    except (ValueError, AttributeError, IndexError):
        logger.debug("ignoring an unreadable SSE event from the LLM server")
        return {}


def _server_stats(data: str) -> GenerationStats | None:
    """llama-server's figures for the request, sent with its last streamed event: `timings` (prompt
    tokens read, `prompt_n`, and served from its cache, `cache_n`) and `usage`. None otherwise."""
    if '"timings"' not in data:  # cheap: most events are one token of text
        return None
    try:
        event = json.loads(data)
        timings = event["timings"]
        evaluated, cached = int(timings.get("prompt_n", 0)), int(timings.get("cache_n", 0))
        usage = event.get("usage") or {}
        return GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or evaluated + cached),
            prompt_evaluated=evaluated,
            completion_tokens=int(usage.get("completion_tokens") or timings.get("predicted_n", 0)),
            prompt_seconds=float(timings.get("prompt_ms", 0.0)) / 1000,
            decode_seconds=float(timings.get("predicted_ms", 0.0)) / 1000,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _split(content: str) -> tuple[str, str]:
    return split_thinking(content)
