"""Consultation workflow core (no Qt): transcribe -> context -> letter, then sign-off and outputs."""

from clarke_desktop.pipeline.errors import EmptySections, PipelineError, StageTimeout, TranscriptRequired
from clarke_desktop.pipeline.finalise import (
    HEADLESS_REASON,
    FinaliseResult,
    SignOffPreview,
    apply_retention,
    retry_writeback,
    sign_off_and_export,
)
from clarke_desktop.pipeline.run import (
    DEFAULT_POLICIES,
    Components,
    ConsultationPipeline,
    ConsultationRequest,
    PipelineResult,
    transcript_only_context,
)
from clarke_desktop.pipeline.stages import StagePolicy, run_stage

__all__ = [
    "EmptySections",
    "DEFAULT_POLICIES",
    "HEADLESS_REASON",
    "SignOffPreview",
    "Components",
    "ConsultationPipeline",
    "ConsultationRequest",
    "FinaliseResult",
    "PipelineError",
    "PipelineResult",
    "StagePolicy",
    "StageTimeout",
    "TranscriptRequired",
    "apply_retention",
    "retry_writeback",
    "run_stage",
    "sign_off_and_export",
    "transcript_only_context",
]
