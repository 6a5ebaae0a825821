"""A recording in progress, as the GUI sees it (no Qt): poll `level`, `elapsed_s`, `live_text`.

The core `Recorder` calls back from its writer thread; those callbacks only store numbers or
queue audio. A feeder thread hands audio to the live transcriber so slow ASR never delays the
crash-safe writer. The GUI polls these attributes from a QTimer, so no callback ever needs to
cross into the GUI thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clarke_desktop.schemas import Transcript

log = logging.getLogger(__name__)


class RecordingSession:
    def __init__(
        self,
        make_recorder: Callable[..., Any],
        live: Any | None = None,
    ) -> None:
        """`make_recorder(on_level=..., on_audio=...)` returns a started-able core Recorder;
        `live` is a LiveTranscriber (feed/finish) or None when ASR is not installed."""
        self.level = 0.0  # 0..1 for the meter
        self.live_text = ""
        self.live_error: str | None = None
        self._live = live
        self._audio: queue.Queue[np.ndarray | None] = queue.Queue()
        self._feeder: threading.Thread | None = None
        self.recorder = make_recorder(on_level=self._on_level, on_audio=self._on_audio if live else None)

    def _on_level(self, level: Any) -> None:
        # dBFS -60..0 mapped to 0..1: a speaking voice sits in the upper half.
        self.level = max(0.0, min(1.0, (float(level.rms_dbfs) + 60.0) / 60.0))

    def _on_audio(self, chunk: np.ndarray) -> None:
        self._audio.put(chunk)

    def _feed_loop(self) -> None:
        while True:
            chunk = self._audio.get()
            if chunk is None:
                return
            if self.live_error:
                continue
            try:
                assert self._live is not None  # the feeder runs only with a live transcriber
                partial = self._live.feed(chunk)
                self.live_text = (partial.stable_text + " " + partial.tentative_text).strip()
            except Exception as exc:  # live text is a convenience; the recording continues
                log.warning("live transcription failed: %s", exc)
                self.live_error = str(exc)

    def start(self) -> None:
        if self._live is not None:
            self._feeder = threading.Thread(target=self._feed_loop, name="clarke-live-asr", daemon=True)
            self._feeder.start()
        self.recorder.start()

    def pause(self) -> None:
        self.recorder.pause()
        self.level = 0.0

    def resume(self) -> None:
        self.recorder.resume()

    @property
    def paused(self) -> bool:
        return bool(self.recorder.paused)

    @property
    def elapsed_s(self) -> float:
        return float(self.recorder.duration_s)

    def stop(self) -> tuple[Path, float, Transcript | None]:
        """Stop capture (slow: converts and finalises; run in a worker). Returns the WAV path,
        the duration, and the live transcript when one was running."""
        result = self.recorder.stop()
        transcript = None
        if self._feeder is not None:
            self._audio.put(None)
            self._feeder.join()
            if not self.live_error and self._live is not None:
                transcript = self._live.finish()
        return Path(result.wav_path), float(result.duration_s), transcript
