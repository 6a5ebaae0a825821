"""The plain values a front end gets from the consultation service (service.py) that have no
core type of their own: model, microphone and speech-model states, the chart assistant's answer,
diagnostics and the settings form. No Qt here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from clarke_desktop.schemas import (
    ClinicalDocument,
    ConsultationStatus,
    SourceRef,
    Transcript,
)

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
    """A chart-assistant write as the approval card shows it. `lines` are the complete proposed
    resource, one element a line (nothing is written that they do not show); `digest` is the sha256
    of its canonical JSON when shown: the write is refused if the resource no longer matches it.
    "refused": elements outside the whitelist (`refusals` names each); never offered for approval."""

    id: str
    summary: str
    resource_type: str
    status: Literal["pending", "approved", "rejected", "refused"] = "pending"
    lines: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    digest: str = ""


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


@dataclass(frozen=True)
class Draft:
    """What a consultation holds when it is reopened: the typed inputs and the latest letter."""

    consultation_id: str
    transcript: Transcript | None  # the saved transcript, or the typed text as last autosaved
    aside: str
    letter: ClinicalDocument | None  # the latest version with every edit and resolution
    signed: bool


@dataclass(frozen=True)
class Unfinished:
    """A consultation not signed off with something to come back to (the clinic list shows it)."""

    consultation_id: str
    patient_id: str
    patient_name: str
    status: ConsultationStatus
    updated_at: str


@dataclass
class AppSettings:
    clinician_name: str = ""
    clinician_title: str = ""
    specialty: str = ""
    letterhead: str = ""
    microphone: str = ""  # "name|host api"
    llm_backend: str = "embedded"  # embedded | installed | server
    server_url: str = ""  # the OpenAI-compatible server, with llm_backend "server"
    hardware: str = ""  # read-only: where models run (GPU name or CPU)
    servers_locked: str = ""  # why this account may not choose a model server ("": it may)
    extra: dict[str, object] = field(default_factory=dict)
