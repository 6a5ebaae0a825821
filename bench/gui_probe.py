"""Measure how responsive the GUI event loop is: a fast QTimer notes how late each tick arrives.

A tick that arrives N ms after it was due means the loop was blocked (a "stall") for about N ms:
nothing the clinician clicks or types is handled during that time.
"""

from __future__ import annotations

import statistics
import time

from PySide6.QtCore import QObject, Qt, QTimer


class LoopLatencyProbe(QObject):
    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.interval_s = interval_ms / 1000
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.stalls_ms: list[float] = []

    def start(self) -> None:
        self.stalls_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> dict[str, float]:
        self._timer.stop()
        return self.summary()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.stalls_ms.append(max(0.0, (now - self._last - self.interval_s) * 1000))
        self._last = now

    def summary(self) -> dict[str, float]:
        s = sorted(self.stalls_ms) or [0.0]
        return {
            "ticks": len(self.stalls_ms),
            "max_stall_ms": round(s[-1], 2),
            "p99_stall_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))], 2),
            "mean_stall_ms": round(statistics.fmean(s), 3),
            "stalls_over_100ms": sum(x > 100 for x in s),
        }
