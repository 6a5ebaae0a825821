"""The transcriber interface the pipeline and GUI use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from clarke_desktop.schemas import Transcript

SAMPLE_RATE = 16_000


class AsrError(Exception):
    """Base class; the message is safe to show and says what to do."""


class AsrModelMissing(AsrError):
    pass


class AudioError(AsrError):
    """Empty, too short, corrupted or non-audio input; the message names the file."""


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
