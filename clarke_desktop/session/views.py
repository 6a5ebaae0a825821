"""What a front end asks of the application, in one interface, and the plain values it gets back
(statuses, settings, model and microphone states). No Qt here.

Every method is synchronous and may be slow: the GUI only ever calls them inside a `TaskRunner`
worker. Streaming methods take plain callbacks which the worker turns into progress reports for
the GUI thread. `ConsultationService` (service.py) implements this on top of the real store,
pipeline, agent and engines; tests may drive the screens with another implementation to check the
logic *around* the core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from clarke_desktop.cancel import CancelToken
from clarke_desktop.pipeline import FinaliseResult, PipelineResult
from clarke_desktop.schemas import (
    ClinicalDocument,
    Clinician,
    ClinicPatient,
    ConsultationStatus,
    DocumentType,
    PatientContext,
    Resolution,
    SourceRef,
    Transcript,
)
from clarke_desktop.session.events import EventSink, ignore
from clarke_desktop.session.recording import RecordingSession

DOC_TYPE_LABELS: dict[str, str] = {
    "clinic": "Clinic letter",
    "soap": "SOAP note",
    "referral": "Referral letter",
    "patient": "Letter to patient",
}


@dataclass
class ModelRow:
    role: str  # e.g. "letter", "agent", "asr"
    name: str
    state: Literal["verified", "installed", "demo", "missing", "unverified", "failed"]
    detail: str = ""
    device: str = ""  # "GPU" / "CPU" / provider name


@dataclass
class ModelStatus:
    kind: Literal["medgemma", "demo", "missing"]
    models: list[ModelRow] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {
            "medgemma": "MedGemma ready",
            "demo": "Demo model",
            "missing": "Letter model missing",
        }[self.kind]


@dataclass
class MicDevice:
    name: str
    host_api: str
    is_default: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} ({self.host_api})" if self.host_api else self.name


@dataclass
class MicStatus:
    devices: list[MicDevice]
    message: str = ""  # why there is none, in words a clinician understands

    @property
    def available(self) -> bool:
        return bool(self.devices)


@dataclass
class AsrStatus:
    installed: bool
    message: str = ""


@dataclass
class AssistantStep:
    kind: str  # "search", "read", "reason", "answer", "propose"
    text: str


@dataclass
class Proposal:
    id: str
    summary: str
    resource_type: str
    status: Literal["pending", "approved", "rejected"] = "pending"


@dataclass
class AssistantAnswer:
    text: str
    citations: list[SourceRef] = field(default_factory=list)
    steps: list[AssistantStep] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    demo_model: bool = False


@dataclass
class Check:
    name: str
    ok: bool | None  # None = not applicable / informational
    detail: str = ""


@dataclass
class AppSettings:
    clinician_name: str = ""
    clinician_title: str = ""
    specialty: str = ""
    letterhead: str = ""
    microphone: str = ""  # "name|host api"
    llm_backend: str = "embedded"  # embedded | installed | server
    hardware: str = ""  # read-only: where models run (GPU name or CPU)
    extra: dict[str, object] = field(default_factory=dict)


class Backend(Protocol):
    def clinic(self) -> tuple[Clinician, list[ClinicPatient]]: ...

    def statuses(self) -> dict[str, ConsultationStatus]:
        """Patient id -> today's consultation status."""
        ...

    def model_status(self) -> ModelStatus: ...

    def asr_status(self) -> AsrStatus: ...

    def microphones(self) -> MicStatus: ...

    def patient_context(self, patient_id: str, cancel: CancelToken) -> PatientContext: ...

    def start_consultation(self, patient_id: str) -> str:
        """Create (or reopen) today's consultation for the patient; returns its id."""
        ...

    def demo_transcript_path(self, patient_id: str) -> Path | None: ...

    def confirm_consent(self, consultation_id: str) -> None:
        """The clinician confirmed the patient agreed to be recorded (audited)."""
        ...

    def start_recording(self, consultation_id: str, device: MicDevice | None) -> RecordingSession:
        """Open the microphone and return a session (not yet started)."""
        ...

    def recording_stopped(
        self,
        consultation_id: str,
        wav_path: Path,
        live: Transcript | None,
        cancel: CancelToken,
        *,
        duration_s: float = 0.0,
    ) -> Transcript:
        """Record the stop (the file, its length and hash, audited) and return the transcript (the
        live one, or a full pass)."""
        ...

    def demo_audio_path(self, patient_id: str) -> Path | None: ...

    def interrupted_work(self, *, recover: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Drafts, recordings and write-backs a crash interrupted ({"drafts", "recordings",
        "writebacks"}, as `clarke-desktop recover --json`); with `recover`, recovered too."""
        ...

    def transcript_from_text(self, consultation_id: str, text: str) -> Transcript: ...

    def transcript_from_audio(
        self, consultation_id: str, path: Path, progress: Callable[[int, str], None], cancel: CancelToken
    ) -> Transcript: ...

    def draft(
        self,
        consultation_id: str,
        *,
        transcript: Transcript | None = None,
        audio_path: Path | None = None,
        aside: str = "",
        doc_type: DocumentType = "clinic",
        on_event: EventSink = ignore,
        cancel: CancelToken | None = None,
        max_section_tokens: int | None = None,
    ) -> PipelineResult:
        """Transcribe (unless given the transcript), read the record and write the letter, saved as
        a new draft version; events report the stages and the sections as they stream."""
        ...

    def regenerate_section(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        section_key: str,
        instruction: str,
        on_event: EventSink,
        cancel: CancelToken,
    ) -> ClinicalDocument:
        """A copy of `document` with that section rewritten (and its fact check redone)."""
        ...

    def save_section(self, consultation_id: str, section_key: str, content: str) -> None: ...

    def resolve_discrepancy(
        self, consultation_id: str, discrepancy_id: str, resolution: Resolution
    ) -> None: ...

    def sign_off(
        self,
        consultation_id: str,
        document: ClinicalDocument | None = None,
        *,
        out_dir: Path | None = None,
        keep_open_discrepancies: bool = False,
        allow_empty_sections: bool = False,
    ) -> FinaliseResult:
        """Save `document`'s unsaved edits, sign the latest version, print the PDF (to `out_dir`,
        default the exports folder) and write it back. `keep_open_discrepancies`: record each open
        one as "keep both" with the headless reason (the CLI's non-strict run) instead of refusing."""
        ...

    def ask_assistant(
        self, patient_id: str, question: str, step: Callable[[AssistantStep], None], cancel: CancelToken
    ) -> AssistantAnswer: ...

    def decide_proposal(self, patient_id: str, proposal_id: str, approve: bool) -> Proposal: ...

    def settings(self) -> AppSettings: ...

    def save_settings(self, settings: AppSettings) -> None: ...

    def diagnostics(self) -> list[Check]: ...

    def close(self) -> None: ...
