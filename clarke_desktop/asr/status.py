"""What the app (status bar, `doctor`) says about speech recognition, without transcribing.

Missing model -> a clear message saying how IT installs it; the rest of the app keeps working
(the clinician can type or import a transcript).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clarke_desktop.asr.base import AsrError, AudioError


@dataclass
class AsrStatus:
    ready: bool
    message: str  # one line, safe to show
    model_dir: str | None = None
    precisions: list[str] = field(default_factory=list)
    available_providers: list[str] = field(default_factory=list)
    provider: str | None = None  # read back from a session when probed
    precision: str | None = None
    note: str | None = None  # fallback reason (never silent)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def asr_status(model_dir: Path | None = None, *, probe: bool = False) -> AsrStatus:
    """Whether a speech model is installed; with probe=True also load it and report its provider."""
    import onnxruntime as ort

    from clarke_desktop import modelpack
    from clarke_desktop.asr.model_dir import INSTALL_HINT, open_model_dir

    available = list(ort.get_available_providers())
    path = Path(model_dir) if model_dir else modelpack.locate("asr")
    if path is None:
        return AsrStatus(
            False, f"No speech model (MedASR) is installed. {INSTALL_HINT}", available_providers=available
        )
    try:
        model = open_model_dir(path)
    except (AsrError, AudioError) as exc:
        return AsrStatus(False, str(exc), model_dir=str(path), available_providers=available)
    status = AsrStatus(
        True,
        f"Speech model {model.name} installed ({', '.join(model.precisions)})",
        model_dir=str(path),
        precisions=model.precisions,
        available_providers=available,
    )
    if probe:
        from clarke_desktop.asr.transcriber import OnnxTranscriber

        try:
            transcriber = OnnxTranscriber(path)
        except (AsrError, AudioError) as exc:
            return AsrStatus(False, str(exc), model_dir=str(path), available_providers=available)
        status.provider, status.precision, status.note = (
            transcriber.provider,
            transcriber.precision,
            transcriber.provider_note,
        )
        status.message += f"; runs on {transcriber.provider} ({transcriber.precision})"
    return status
