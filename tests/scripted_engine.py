"""A scripted LlmEngine for testing the logic *around* a model (agent loop, letter assembly,
failure handling). It is never a stand-in for the engine's own tests: those use the real GGUF.

Each call takes the next scripted reply: a string (streamed word by word), an exception (raised),
or a callable given the turns that returns a string. `generate_json` validates the reply against
the schema exactly like the real engines do (pydantic, with retries consuming further replies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from clarke_desktop.cancel import CancelToken
from clarke_desktop.llm.base import InvalidModelOutput, Turn
from clarke_desktop.llm.streaming import BatchPiece, GenerationStats
from clarke_desktop.schemas import ModelInfo

Reply = str | BaseException | Callable[[list[Turn]], str]


class ScriptedEngine:
    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        default: Reply | None = None,
        context_length: int = 8192,
        demo: bool = False,
        name: str = "scripted",
    ) -> None:
        self.replies = list(replies or [])
        self.default = default
        self._context_length = context_length
        self.info = ModelInfo(name=name, role="test", demo=demo, backend="scripted")
        self.calls: list[dict[str, Any]] = []

    @property
    def context_length(self) -> int:
        return self._context_length

    def count_tokens(self, text: str) -> int:
        return len(text.split())  # one token per word: easy to reason about in budget tests

    def _next(self, turns: list[Turn], kind: str, **kwargs: Any) -> str:
        self.calls.append({"kind": kind, "turns": list(turns), **kwargs})
        if self.replies:
            reply = self.replies.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError(f"ScriptedEngine ran out of replies at call {len(self.calls)} ({kind})")
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(turns)
        return reply

    def stream(
        self,
        turns: list[Turn],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        stop: list[str] | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        text = self._next(turns, "stream", max_tokens=max_tokens)
        words = text.split(" ")[:max_tokens]
        for index, word in enumerate(words):
            if cancel:
                cancel.raise_if_cancelled()
            yield word if index == 0 else " " + word

    def complete(self, turns: list[Turn], *, max_tokens: int, **kwargs: Any) -> str:
        return "".join(self.stream(turns, max_tokens=max_tokens, cancel=kwargs.get("cancel")))

    def generate_json(
        self,
        turns: list[Turn],
        schema: type[BaseModel],
        *,
        max_tokens: int,
        retries: int = 1,
        cancel: CancelToken | None = None,
    ):
        problem = ""
        for _ in range(retries + 1):
            text = self._next(turns, "json", schema=schema.__name__, max_tokens=max_tokens)
            try:
                return schema.model_validate_json(text)
            except ValidationError as exc:
                problem = str(exc.errors(include_input=False)[:1])
        raise InvalidModelOutput(f"scripted output did not validate as {schema.__name__}: {problem}")

    def close(self) -> None:
        pass


class ScriptedTogetherEngine(ScriptedEngine):
    """A scripted engine that writes prompts sharing a prefix together, as llama.cpp in process
    does: replies are taken in prompt order, then their words are handed out in turns (one word
    of each unfinished answer per step), each answer ending with a `done` piece and its figures."""

    together = True

    def can_write_together(self, prompts: list[list[Turn]], max_tokens: int) -> bool:
        return self.together and len(prompts) >= 2

    def set_together(self, enabled: bool) -> None:
        self.together = enabled

    def stream_together(
        self,
        prompts: list[list[Turn]],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        cancel: CancelToken | None = None,
    ) -> Iterator[BatchPiece]:
        replies = [self._next(turns, "together", max_tokens=max_tokens) for turns in prompts]
        words = [reply.split(" ")[:max_tokens] for reply in replies]
        stats = [GenerationStats(prompt_tokens=len(t[0].text.split()), prompt_evaluated=7) for t in prompts]
        for step in range(max(len(w) for w in words)):
            for index, own in enumerate(words):
                if cancel:
                    cancel.raise_if_cancelled()
                if step < len(own):
                    stats[index].completion_tokens += 1
                    yield BatchPiece(index, own[step] if step == 0 else " " + own[step], stats=stats[index])
                if step == len(own) - 1:
                    yield BatchPiece(index, "", done=True, stats=stats[index])
