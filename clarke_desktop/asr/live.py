"""Live transcription: audio chunks in as they are recorded, stable text plus a tentative tail.

Windows are committed exactly where the offline plan would place them, so the final transcript
equals `transcribe()` on the whole recording. Between commits a tentative pass over the open
window is run at most every `partial_interval_s` of new audio; `finish()` reuses it when no audio
arrived since, so the final transcript is ready one window's inference after the last chunk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from clarke_desktop.asr.base import SAMPLE_RATE, AudioError, LivePartial
from clarke_desktop.asr.ctc import FRAME_SECONDS, FrameScores, decode
from clarke_desktop.asr.features import MIN_SAMPLES
from clarke_desktop.asr.windows import FRAME_SAMPLES, Window, total_frames
from clarke_desktop.schemas import Transcript

if TYPE_CHECKING:
    from clarke_desktop.asr.transcriber import OnnxTranscriber


class LiveSession:
    def __init__(self, transcriber: OnnxTranscriber, *, partial_interval_s: float = 2.0) -> None:
        self._t = transcriber
        self._plan = transcriber.plan
        self._interval = max(0, int(partial_interval_s * SAMPLE_RATE))
        self._chunks: list[np.ndarray] = []  # audio from sample `_offset` on
        self._offset = 0
        self._samples = 0  # everything fed so far
        self._committed: list[FrameScores] = []
        self._next_frame = 0  # first frame not committed
        self._tentative: FrameScores | None = None
        self._tentative_key: tuple[int, int] | None = None  # (window.first, window.last) computed
        self._since_partial = 0
        self._finished = False
        self.passes = 0  # model runs, for tests and benchmarks
        self._last_partial = LivePartial("", "")
        self._partial_passes = -1  # `passes` when _last_partial was built

    # -- buffer --------------------------------------------------------------------------------
    def _audio(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    def _run(self, window: Window) -> FrameScores:
        """Scores of `window`'s kept frames from the buffered audio (shifted to the buffer start)."""
        shift = self._offset // FRAME_SAMPLES
        local = Window(
            window.first - shift, window.last - shift, window.keep_from - shift, window.keep_to - shift
        )
        self.passes += 1
        return self._t.window_scores(self._audio(), local)

    def _drop_consumed_audio(self) -> None:
        keep_from = max(0, self._next_frame - self._plan.context_frames) * FRAME_SAMPLES
        if keep_from > self._offset:
            audio = self._audio()[keep_from - self._offset :]
            self._chunks, self._offset = [audio], keep_from

    # -- API -----------------------------------------------------------------------------------
    def feed(self, chunk: np.ndarray) -> LivePartial:
        if self._finished:
            raise RuntimeError("this live transcription has finished")
        samples = np.asarray(chunk, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioError(f"live audio chunk: expected mono samples (1-D), got shape {samples.shape}")
        if samples.size:
            self._chunks.append(samples.copy())
            self._samples += samples.size
            self._since_partial += samples.size
        available = total_frames(self._samples)
        while self._next_frame < available and self._plan.is_final(self._next_frame, available):
            window = self._plan.window_at(self._next_frame, available)
            self._committed.append(self._run(window))
            self._next_frame = window.keep_to
            self._tentative, self._tentative_key = None, None
            self._drop_consumed_audio()
        if self._next_frame < available and self._since_partial >= self._interval:
            window = self._plan.window_at(self._next_frame, available)
            self._tentative = self._run(window)
            self._tentative_key = (window.first, window.last)
            self._since_partial = 0
        return self._partial()

    def _partial(self) -> LivePartial:
        if self._partial_passes == self.passes:  # no model run since: nothing changed
            return self._last_partial
        self._partial_passes = self.passes
        committed = FrameScores.concat(self._committed)
        words = decode(
            FrameScores.concat([committed, *([self._tentative] if self._tentative else [])]),
            self._t.vocabulary,
        )
        # A word is stable once it ends inside the committed frames and the next word starts
        # there too (the last committed word may still grow into the tentative part).
        boundary = self._next_frame * FRAME_SECONDS - 1e-9
        n_stable = 0
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else None
            if word.end_s <= boundary and nxt is not None and nxt.start_s <= boundary:
                n_stable = i + 1
        stable = " ".join(w.text for w in words[:n_stable])
        tentative = " ".join(w.text for w in words[n_stable:])
        self._last_partial = LivePartial(stable_text=stable, tentative_text=tentative)
        return self._last_partial

    def finish(self) -> Transcript:
        """Transcribe what is left and return the whole transcript (same as an offline pass)."""
        if self._finished:
            raise RuntimeError("this live transcription has already finished")
        began = time.perf_counter()
        if self._samples < MIN_SAMPLES:
            raise AudioError(
                f"the recording is too short ({self._samples / SAMPLE_RATE:.3f} s); "
                f"at least {MIN_SAMPLES / SAMPLE_RATE:.3f} s is needed"
            )
        self._finished = True
        total = total_frames(self._samples)
        parts = list(self._committed)
        start = self._next_frame
        while start < total:
            window = self._plan.window_at(start, total)
            reusable = self._tentative_key == (window.first, window.last)
            parts.append(self._tentative if self._tentative is not None and reusable else self._run(window))
            start = window.keep_to
        self._chunks = []
        return self._t.transcript(
            FrameScores.concat(parts), self._samples / SAMPLE_RATE, time.perf_counter() - began
        )
