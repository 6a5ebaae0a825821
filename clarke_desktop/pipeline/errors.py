"""Pipeline failures, each with a message safe to show a clinician and what they can do next."""

from __future__ import annotations

from typing import Literal

from clarke_desktop.asr.base import AsrModelMissing
from clarke_desktop.errors import ClarkeError
from clarke_desktop.schemas import ErrorResponse

ErrorKind = Literal["model_error", "fhir_error", "audio_error", "timeout", "cancelled", "not_found"]


class PipelineError(ClarkeError):
    """A stage failed for good (after its retries and fallbacks)."""

    def __init__(
        self,
        stage: str,
        kind: ErrorKind,
        message: str,
        *,
        detail: str | None = None,
        consultation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.kind = kind
        self.message = message
        self.detail = detail
        self.consultation_id = consultation_id

    def response(self) -> ErrorResponse:
        """The blueprint's error shape: `message` is shown, `detail` only logged."""
        return ErrorResponse(
            error=self.kind, message=self.message, detail=self.detail, consultation_id=self.consultation_id
        )


class TranscriptRequired(AsrModelMissing):
    """Speech recognition is not installed: the workflow continues with a typed or imported transcript."""


class StageTimeout(ClarkeError):
    def __init__(self, stage: str, seconds: float) -> None:
        super().__init__(f"{stage} took longer than {seconds:g} s")
        self.stage = stage
        self.seconds = seconds


class EmptySections(ClarkeError):
    """A letter is not signed while a section the clinician must write is empty."""

    def __init__(self, headings: list[str]) -> None:
        self.headings = headings
        self.message = (
            f"Not signed: {'this section is' if len(headings) == 1 else 'these sections are'} empty: "
            f"{', '.join(headings)}. Write or regenerate {'it' if len(headings) == 1 else 'them'}, then sign."
        )
        super().__init__(self.message)
