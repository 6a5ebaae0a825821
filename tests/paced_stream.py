"""A fake microphone for the recorder's logic: delivers a signal at real-time pace through the
callback (timing and crash tests; the PortAudio path itself is tested against ALSA)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class PacedTestStream:
    def __init__(self, signal: np.ndarray, samplerate: int, blocksize: int, callback: Callable[..., None]):
        self._signal = signal.astype(np.int16)
        self._rate = samplerate
        self._block = blocksize
        self._callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        for n, offset in enumerate(range(0, len(self._signal), self._block)):
            if self._stop.is_set():
                return
            block = self._signal[offset : offset + self._block].reshape(-1, 1)
            self._callback(block, len(block), None, None)
            delay = t0 + (n + 1) * self._block / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def close(self) -> None:
        pass
