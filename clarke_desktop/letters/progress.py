"""What a letter's model requests cost and how far its narrative writing has come.

`SectionProgress` travels with the writer's events (and on to the GUI) so a front end can show
"section 2 of 3" (or "3 sections together") and an estimate of the time left from the decode rate
measured in this letter.
`RequestUsage` says, for each model request, how many prompt tokens it asked for and how many the
engine really read (the rest came from a saved prefix), and `LlmUsage` adds them up for a letter.
No wall-clock reading happens here: callers pass the time, so the arithmetic is testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SectionProgress:
    """Where the narrative writing stands when an event is sent.

    `index` of `count` narrative sections (1-based; a regeneration is 1 of 1); `tokens` generated in
    this section so far, of at most `max_tokens`; `tokens_per_second` measured over this letter's
    generation so far (None until two tokens have arrived); `remaining_s` the estimated seconds until
    the last narrative section is written (None while no rate is known); `together` how many
    sections are being written at the same time (1: one after another)."""

    index: int
    count: int
    tokens: int
    max_tokens: int
    tokens_per_second: float | None
    remaining_s: float | None
    together: int = 1


@dataclass(frozen=True)
class RequestUsage:
    """One model request: prompt tokens asked for, prompt tokens the engine read (None when the
    backend does not say), tokens generated, and seconds to the first token and in all."""

    prompt_tokens: int
    prompt_evaluated: int | None
    completion_tokens: int
    first_token_s: float | None
    seconds: float


@dataclass
class LlmUsage:
    """A letter's requests added up (what `clarke-desktop letter --json` reports as "llm")."""

    requests: int = 0
    prompt_tokens_requested: int = 0
    prompt_tokens_evaluated: int | None = 0  # None once any request's backend did not say

    def add(self, usage: RequestUsage) -> None:
        self.requests += 1
        self.prompt_tokens_requested += usage.prompt_tokens
        if self.prompt_tokens_evaluated is not None and usage.prompt_evaluated is not None:
            self.prompt_tokens_evaluated += usage.prompt_evaluated
        else:
            self.prompt_tokens_evaluated = None

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens_requested": self.prompt_tokens_requested,
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
        }


class ProgressMeter:
    """Measures the narrative sections as they stream and estimates the time left.

    The estimate: the tokens still expected in this section and in the sections after it, at the
    decode rate measured so far in this letter, plus each later section's wait for its first token
    (the last one measured: with a reused prefix, that is reading the short section request only).
    Tokens expected per section: the mean of the finished ones, or the cap before any has finished.
    Every method takes the time (`time.perf_counter()`), so the arithmetic is testable."""

    def __init__(self, count: int, max_tokens: int) -> None:
        self.count = count
        self.max_tokens = max_tokens
        self.index = 0
        self._finished: list[int] = []  # tokens of each finished section
        self._decode_tokens = 0  # tokens after each finished section's first ...
        self._decode_seconds = 0.0  # ... and the time they took
        self._first_token_s: float | None = None  # the last measured wait for a first token
        self._started = self._now = 0.0
        self._first_at: float | None = None
        self._tokens = 0
        self._writing = False

    def start(self, now: float) -> None:
        """The next narrative section's request is sent."""
        self.index += 1
        self._started = self._now = now
        self._first_at, self._tokens, self._writing = None, 0, True

    def update(self, tokens: int, now: float) -> None:
        """`tokens` generated in this section by `now`."""
        self._now = now
        if tokens > 0 and self._first_at is None:
            self._first_at = now
            self._first_token_s = now - self._started
        self._tokens = tokens

    def finish(self, tokens: int, now: float) -> None:
        self.update(tokens, now)
        if self._first_at is not None and tokens > 1:
            self._decode_tokens += tokens - 1
            self._decode_seconds += now - self._first_at
        self._finished.append(tokens)
        self._writing = False

    @property
    def tokens_per_second(self) -> float | None:
        tokens, seconds = self._decode_tokens, self._decode_seconds
        if self._writing and self._first_at is not None and self._tokens > 1:  # the section in hand
            tokens += self._tokens - 1
            seconds += self._now - self._first_at
        return tokens / seconds if tokens > 0 and seconds > 0 else None

    def snapshot(self) -> SectionProgress:
        rate = self.tokens_per_second
        remaining = None
        if rate:
            expected = sum(self._finished) / len(self._finished) if self._finished else float(self.max_tokens)
            in_hand = max(expected - self._tokens, 0.0) if self._writing else 0.0
            later = max(self.count - self.index, 0)
            remaining = (in_hand + later * expected) / rate + later * (self._first_token_s or 0.0)
        return SectionProgress(
            index=self.index,
            count=self.count,
            tokens=self._tokens,
            max_tokens=self.max_tokens,
            tokens_per_second=round(rate, 2) if rate else None,
            remaining_s=round(remaining, 1) if remaining is not None else None,
        )


class TogetherMeter:
    """Measures narrative sections written together, where each step of the model adds a token to
    every unfinished section, and estimates the time left: the steps that the unfinished section
    furthest from its expected length still needs, at the step rate measured on this letter.
    Expected length: the mean of the finished sections, or the cap before any has finished.
    `tokens_per_second` counts every section's tokens (what the model produces in all)."""

    def __init__(self, count: int, max_tokens: int) -> None:
        self.count = count
        self.max_tokens = max_tokens
        self._tokens = [0] * count
        self._done = [False] * count
        self._first_at: float | None = None
        self._now = 0.0

    def update(self, index: int, tokens: int, now: float) -> None:
        """Section `index` (0-based, among the narrative sections) has `tokens` by `now`."""
        self._now = now
        if tokens > 0 and self._first_at is None:
            self._first_at = now
        self._tokens[index] = tokens

    def finish(self, index: int, tokens: int, now: float) -> None:
        self.update(index, tokens, now)
        self._done[index] = True

    def _per_second(self, tokens: int) -> float | None:
        seconds = self._now - self._first_at if self._first_at is not None else 0.0
        return tokens / seconds if tokens > 0 and seconds > 0 else None

    @property
    def tokens_per_second(self) -> float | None:
        # Every section's first token comes from reading the prompts; the rest are decode steps.
        return self._per_second(sum(max(t - 1, 0) for t in self._tokens))

    def snapshot(self, index: int) -> SectionProgress:
        rate = self.tokens_per_second
        steps = self._per_second(max(self._tokens) - 1)
        remaining = None
        if steps:
            finished = [t for t, done in zip(self._tokens, self._done, strict=True) if done]
            expected = sum(finished) / len(finished) if finished else float(self.max_tokens)
            unfinished = [t for t, done in zip(self._tokens, self._done, strict=True) if not done]
            remaining = max((max(expected - t, 0.0) for t in unfinished), default=0.0) / steps
        return SectionProgress(
            index=index + 1,
            count=self.count,
            tokens=self._tokens[index],
            max_tokens=self.max_tokens,
            tokens_per_second=round(rate, 2) if rate else None,
            remaining_s=round(remaining, 1) if remaining is not None else None,
            together=self.count,
        )
