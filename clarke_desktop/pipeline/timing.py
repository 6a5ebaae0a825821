"""Time spent inside model inference, measured at the engine and transcriber boundary.

The proxies forward every call unchanged and add the wall time spent inside it (for streams,
inside each step of the generator), so the pipeline can report how much of a consultation is
orchestration (FHIR, database, PDF, prompt building) rather than model work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from clarke_desktop.llm.base import LlmEngine
from clarke_desktop.schemas import Transcript

T = TypeVar("T")


class InferenceClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    @property
    def total(self) -> float:
        with self._lock:
            return sum(self.seconds.values())


class TimedEngine:
    """Wraps an LlmEngine; `info`, `context_length` and anything else pass straight through."""

    def __init__(self, engine: LlmEngine, clock: InferenceClock, key: str) -> None:
        self._engine = engine
        self._clock = clock
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def inner(self) -> Any:
        return self._engine

    def _timed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._clock.add(self._key, time.perf_counter() - started)

    def complete(self, *args: Any, **kwargs: Any) -> str:
        return self._timed(self._engine.complete, *args, **kwargs)

    def generate_json(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._engine.generate_json, *args, **kwargs)

    def count_tokens(self, text: str) -> int:
        return self._timed(self._engine.count_tokens, text)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        iterator = self._timed(self._engine.stream, *args, **kwargs)
        while True:
            started = time.perf_counter()
            try:
                piece = next(iterator)
            except StopIteration:
                self._clock.add(self._key, time.perf_counter() - started)
                return
            self._clock.add(self._key, time.perf_counter() - started)
            yield piece


class TimedTranscriber:
    def __init__(self, transcriber: Any, clock: InferenceClock, key: str = "asr") -> None:
        self._transcriber = transcriber
        self._clock = clock
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transcriber, name)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        started = time.perf_counter()
        try:
            transcript: Transcript = self._transcriber.transcribe(audio)
            return transcript
        finally:
            self._clock.add(self._key, time.perf_counter() - started)
