"""MedASR speech recognition through ONNX Runtime (CUDA where available, CPU otherwise).

    from clarke_desktop.asr import load_transcriber
    transcriber = load_transcriber()          # the installed pack, or AsrModelMissing
    transcript = transcriber.transcribe(samples_16k_mono_float32)
    live = transcriber.live(); live.feed(chunk) ...; transcript = live.finish()

Heavy modules (onnxruntime) load on first use, so importing this package is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from clarke_desktop.asr.base import (
    SAMPLE_RATE,
    AsrError,
    AsrModelMissing,
    AudioError,
    LivePartial,
    LiveTranscriber,
    Transcriber,
)

if TYPE_CHECKING:
    from clarke_desktop.asr.correction import Term, correct_transcript, vocabulary_from_context
    from clarke_desktop.asr.status import AsrStatus, asr_status
    from clarke_desktop.asr.transcriber import OnnxTranscriber, load_transcriber

_LAZY = {
    "OnnxTranscriber": "transcriber",
    "load_transcriber": "transcriber",
    "asr_status": "status",
    "AsrStatus": "status",
    "Term": "correction",
    "correct_transcript": "correction",
    "vocabulary_from_context": "correction",
}

__all__ = [
    "SAMPLE_RATE",
    "AsrError",
    "AsrModelMissing",
    "AsrStatus",
    "AudioError",
    "LivePartial",
    "LiveTranscriber",
    "OnnxTranscriber",
    "Term",
    "Transcriber",
    "asr_status",
    "correct_transcript",
    "load_transcriber",
    "vocabulary_from_context",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(f"clarke_desktop.asr.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'clarke_desktop.asr' has no attribute {name!r}")
