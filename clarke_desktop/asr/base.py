"""The transcriber interface the pipeline and GUI use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from clarke_desktop.audio.files import SAMPLE_RATE, AudioError
from clarke_desktop.errors import ClarkeError
from clarke_desktop.schemas import Transcript

__all__ = [
    "SAMPLE_RATE",
    "AsrError",
    "AsrModelMissing",
    "AudioError",
    "LivePartial",
    "LiveTranscriber",
    "Transcriber",
]


class AsrError(ClarkeError):
    """Base class; the message is safe to show and says what to do."""


class AsrModelMissing(AsrError):
    pass


@dataclass
class LivePartial:
    stable_text: str  # will not change any more
    tentative_text: str  # may still change as audio arrives


@runtime_checkable
class LiveTranscriber(Protocol):
    def feed(self, chunk: np.ndarray) -> LivePartial:
        """16 kHz mono float32 samples as recorded."""
        ...

    def finish(self) -> Transcript: ...


@runtime_checkable
class Transcriber(Protocol):
    provider: str  # the ONNX Runtime provider actually in use

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """16 kHz mono float32 in [-1, 1]."""
        ...

    def live(self) -> LiveTranscriber: ...
