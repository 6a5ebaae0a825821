"""MedASR transcriber: numpy front end -> ONNX Runtime -> greedy CTC, window by window."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

import numpy as np

from clarke_desktop import modelpack
from clarke_desktop.asr.base import SAMPLE_RATE, AsrModelMissing, AudioError
from clarke_desktop.asr.ctc import FrameScores, decode
from clarke_desktop.asr.features import MIN_SAMPLES, log_mel
from clarke_desktop.asr.model_dir import INSTALL_HINT, ModelDir, open_model_dir
from clarke_desktop.asr.session import CUDA, OnnxAcousticModel
from clarke_desktop.asr.windows import Window, WindowPlan, total_frames
from clarke_desktop.schemas import Transcript

if TYPE_CHECKING:
    from clarke_desktop.asr.live import LiveSession

log = logging.getLogger("clarke_desktop.asr")


class TranscriberOptions(TypedDict, total=False):
    """The keyword options of `OnnxTranscriber`, as `load_transcriber` passes them on."""

    device: str
    precision: str
    cpu_threads: int | None
    plan: WindowPlan | None


def check_audio(audio: np.ndarray, what: str = "audio") -> np.ndarray:
    """16 kHz mono float32, long enough for one CTC frame; AudioError otherwise."""
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise AudioError(f"{what}: expected mono samples (1-D), got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{what} is empty: no samples")
    if samples.size < MIN_SAMPLES:
        raise AudioError(
            f"{what} is too short ({samples.size / SAMPLE_RATE:.3f} s); "
            f"at least {MIN_SAMPLES / SAMPLE_RATE:.3f} s is needed"
        )
    samples = samples.astype(np.float32, copy=False)
    if not np.isfinite(samples).all():
        raise AudioError(f"{what} holds non-finite samples (NaN or infinity)")
    return samples


class OnnxTranscriber:
    """Loads once; `transcribe(audio)` for a whole recording, `live()` while recording."""

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int | None = None,
        plan: WindowPlan | None = None,
    ) -> None:
        self.model_dir: ModelDir = open_model_dir(model_dir)
        self.acoustic = OnnxAcousticModel(
            self.model_dir, device=device, precision=precision, cpu_threads=cpu_threads
        )
        self.provider: str = self.acoustic.provider
        self.vocabulary = self.model_dir.vocabulary
        self.plan = plan or WindowPlan()

    @property
    def precision(self) -> str:
        return self.acoustic.precision

    @property
    def provider_note(self) -> str | None:
        """Why the provider or precision differs from what was asked for; None when as asked."""
        return self.acoustic.choice.note

    @property
    def model_name(self) -> str:
        return f"{self.model_dir.name} ({self.precision}, {self.provider})"

    @functools.cached_property
    def model_sha256(self) -> str:
        """The sha256 of the acoustic graph in use (hashed once per load), for the audit log."""
        from clarke_desktop.files import file_sha256

        return file_sha256(self.model_dir.graph(self.acoustic.precision))

    def window_scores(self, audio: np.ndarray, window: Window) -> FrameScores:
        """Per-frame scores of the kept part of one window; `audio` starts at sample 0."""
        start, end = window.samples
        logits = self.acoustic.logits(log_mel(audio[start:end]))
        expected = window.last - window.first
        if logits.shape[0] != expected:  # a broken graph, not a user error
            raise RuntimeError(f"model returned {logits.shape[0]} frames for a {expected}-frame window")
        lo, hi = window.keep_from - window.first, window.keep_to - window.first
        return FrameScores.from_logits(logits[lo:hi])

    def frame_scores(self, audio: np.ndarray) -> FrameScores:
        audio = check_audio(audio)
        windows = self.plan.windows(total_frames(audio.size))
        return FrameScores.concat([self.window_scores(audio, w) for w in windows])

    def transcript(self, scores: FrameScores, duration_s: float, processing_s: float) -> Transcript:
        words = decode(scores, self.vocabulary)
        return Transcript(
            text=" ".join(w.text for w in words),
            words=words,
            duration_s=round(duration_s, 3),
            provider=self.provider,
            model=self.model_name,
            model_sha256=self.model_sha256,
            processing_s=round(processing_s, 3),
        )

    def transcribe(self, audio: np.ndarray) -> Transcript:
        began = time.perf_counter()
        scores = self.frame_scores(audio)
        return self.transcript(scores, np.asarray(audio).size / SAMPLE_RATE, time.perf_counter() - began)

    def transcribe_file(self, path: Path) -> Transcript:
        from clarke_desktop.audio.files import load_audio

        audio = load_audio(path)
        began = time.perf_counter()
        scores = FrameScores.concat(
            [self.window_scores(audio, w) for w in self.plan.windows(total_frames(audio.size))]
        )
        return self.transcript(scores, audio.size / SAMPLE_RATE, time.perf_counter() - began)

    def live(self, partial_interval_s: float | None = None) -> LiveSession:
        from clarke_desktop.asr.live import LiveSession

        if partial_interval_s is None:
            partial_interval_s = 0.5 if self.provider == CUDA else 2.0
        return LiveSession(self, partial_interval_s=partial_interval_s)


def load_transcriber(model_dir: Path | None = None, **options: Unpack[TranscriberOptions]) -> OnnxTranscriber:
    """The installed MedASR (or `model_dir`); AsrModelMissing says what is missing and how to fix it."""
    if model_dir is None:
        model_dir = modelpack.locate("asr")
        if model_dir is None:
            raise AsrModelMissing(f"No speech model (MedASR) is installed. {INSTALL_HINT}")
    return OnnxTranscriber(Path(model_dir), **options)
