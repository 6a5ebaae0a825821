"""The text side of streaming, shared by both backends: thinking separation and stop strings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from clarke_desktop.cancel import CancelToken
from clarke_desktop.llm.base import Turn
from clarke_desktop.llm.prompt import ThinkingSplitter, _partial_marker_suffix

logger = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    """What the last generation did; the benchmark and diagnostics read it (no text in here)."""

    prompt_tokens: int = 0
    prompt_evaluated: int = 0  # prompt tokens the model read; the rest came from a saved prefix state
    completion_tokens: int = 0
    context_size: int = 0
    prompt_seconds: float = 0.0  # until the first token was sampled (time to first token)
    decode_seconds: float = 0.0  # from the first sampled token to the end
    sampling_seconds: float = 0.0  # choosing tokens (incl. grammar checks), not running the model
    grammar_rejections: int = 0  # sampled tokens the grammar refused (resampled under the grammar)
    full_vocab_fallbacks: int = 0  # rejections that needed the grammar over the whole vocabulary
    stopped_by: str = ""  # "eog", "max_tokens", "stop", "json_complete", "cancelled"

    @property
    def tokens_per_second(self) -> float:
        # The first token comes from prompt processing; the rate counts the decode steps after it.
        steps = self.completion_tokens - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds > 0 else 0.0


@dataclass(frozen=True)
class BatchPiece:
    """A piece of one of several answers written together (`LlamaCppEngine.stream_together`):
    `index` says whose, in the order the prompts were given. Each answer ends with one piece with
    `done` set (its text may be empty), which carries that request's own figures in `stats`."""

    index: int
    text: str
    done: bool = False
    stats: GenerationStats | None = None


@runtime_checkable
class WritesTogether(Protocol):
    """An engine that can write several answers sharing a prompt prefix at the same time (the
    in-process llama.cpp engine); callers ask `can_write_together` first."""

    def can_write_together(self, prompts: list[list[Turn]], max_tokens: int) -> bool: ...

    def set_together(self, enabled: bool) -> None: ...

    def stream_together(
        self,
        prompts: list[list[Turn]],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        cancel: CancelToken | None = None,
    ) -> Iterator[BatchPiece]: ...


class TextPipeline:
    """Raw model text in, answer text out: thinking goes to `on_thinking`, stop strings end it."""

    def __init__(
        self,
        stop: Sequence[str] | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> None:
        self._stops = [s for s in (stop or []) if s]
        self._pending = ""
        self._splitter = ThinkingSplitter()
        self._on_thinking = on_thinking
        self._reported_thinking = 0
        self.stopped = False
        self.text = ""  # all answer text released so far

    def feed(self, raw: str) -> str:
        if self.stopped:
            return ""
        released = self._release(self._splitter.feed(raw))
        self._report_thinking()
        return released

    def finish(self) -> str:
        tail = "" if self.stopped else self._splitter.finish()
        self._report_thinking()
        if self.stopped:
            return ""
        out = self._release(tail, final=True)
        return out

    def _release(self, answer: str, final: bool = False) -> str:
        if not self._stops:
            self.text += answer
            return answer
        self._pending += answer
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            out = self._pending[: min(hits)]
            self._pending = ""
            self.stopped = True
        elif final:
            out, self._pending = self._pending, ""
        else:
            keep = max(_partial_marker_suffix(self._pending, s) for s in self._stops)
            cut = len(self._pending) - keep
            out, self._pending = self._pending[:cut], self._pending[cut:]
        self.text += out
        return out

    def _report_thinking(self) -> None:
        new = self._splitter.thinking_text[self._reported_thinking :]
        if new:
            self._reported_thinking += len(new)
            if self._on_thinking is not None:
                self._on_thinking(new)

    @property
    def thinking(self) -> str:
        return self._splitter.thinking_text
