"""Data that flows between the stages: transcript -> context -> letter -> sign-off.

Pydantic v2 models, plain Python (no Qt). Shapes follow the Clarke blueprint (§4) with one
change throughout: every fact carries where it came from (a FHIR resource id and version, or a
transcript span), because a clinician must be able to trace each fact in a letter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, model_validator


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- Provenance -----------------------------------------------------------------------------


class SourceRef(BaseModel):
    """A FHIR resource version a fact was read from."""

    resource_type: str
    id: str
    version_id: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


class TranscriptSpan(BaseModel):
    """Where in the consultation something was said (seconds from the start of the audio)."""

    text: str
    start_s: float | None = None
    end_s: float | None = None
    char_start: int | None = None  # offsets into Transcript.text
    char_end: int | None = None


# --- Clinic list ----------------------------------------------------------------------------


class ConsultationStatus(StrEnum):
    WAITING = "waiting"
    RECORDING = "recording"
    PAUSED = "paused"
    PROCESSING = "processing"
    REVIEW = "review"  # a draft exists
    SIGNED_OFF = "signed_off"


class ClinicPatient(BaseModel):
    """One appointment row on the dashboard."""

    id: str = Field(description="FHIR Patient id")
    nhs_number: str = Field(description="formatted XXX XXX XXXX")
    name: str
    date_of_birth: str = Field(description="DD/MM/YYYY")
    age: int
    sex: str
    appointment_time: str = Field(description="HH:MM")
    summary: str
    appointment_id: str | None = None


class Clinician(BaseModel):
    name: str
    title: str = ""
    specialty: str = ""
    practitioner_id: str | None = None


# --- Patient context (EHR agent output) -----------------------------------------------------


class Demographics(BaseModel):
    name: str
    date_of_birth: str  # ISO date
    nhs_number: str | None = None
    age: int | None = None
    sex: str | None = None
    address: str | None = None
    gp_name: str | None = None
    gp_practice: str | None = None
    gp_address: str | None = None
    source: SourceRef | None = None


class Problem(BaseModel):
    name: str
    onset: str | None = None
    status: str | None = None
    code: str | None = None
    source: SourceRef


class Medication(BaseModel):
    name: str
    dose: str | None = None
    frequency: str | None = None
    route: str | None = None
    dosage_text: str | None = None
    status: str | None = None
    source: SourceRef


class Allergy(BaseModel):
    substance: str
    reaction: str | None = None
    severity: str | None = None
    criticality: str | None = None
    source: SourceRef


class LabResult(BaseModel):
    name: str
    value: str
    unit: str | None = None
    reference_range: str | None = None
    date: str
    trend: Literal["rising", "falling", "stable"] | None = None
    previous_value: str | None = None
    previous_date: str | None = None
    code: str | None = None
    source: SourceRef
    previous_source: SourceRef | None = None


class ImagingReport(BaseModel):
    type: str
    date: str | None = None
    summary: str | None = None
    source: SourceRef


class EncounterSummary(BaseModel):
    date: str | None = None
    type: str | None = None
    reason: str | None = None
    source: SourceRef


class ModelInfo(BaseModel):
    name: str
    role: str
    file: str | None = None
    sha256: str | None = None
    demo: bool = False  # true: embedded stand-in, not for clinical use
    backend: str = "llama.cpp"
    gpu_offload: bool = False


class PatientContext(BaseModel):
    patient_id: str
    demographics: Demographics
    problem_list: list[Problem] = Field(default_factory=list)
    medications: list[Medication] = Field(default_factory=list)
    allergies: list[Allergy] = Field(default_factory=list)
    recent_labs: list[LabResult] = Field(default_factory=list)
    # Latest vital-sign Observations (BP, weight, pulse...) with the previous value; kept apart
    # from laboratory results as clinicians read them apart.
    vital_signs: list[LabResult] = Field(default_factory=list)
    recent_imaging: list[ImagingReport] = Field(default_factory=list)
    recent_encounters: list[EncounterSummary] = Field(default_factory=list)
    last_letter_excerpt: str | None = None
    last_letter_source: SourceRef | None = None
    # Model-written, judgement only: never a record fact.
    clinical_flags: list[str] = Field(default_factory=list)
    summary: str | None = None
    retrieval_warnings: list[str] = Field(default_factory=list)  # the record: what could not be read
    # Resources of this patient held back (quarantined) by a lenient import, by type: what the
    # record shows is incomplete there, and an empty list is no evidence of absence.
    not_loaded: dict[str, int] = Field(default_factory=dict)
    model_warnings: list[str] = Field(default_factory=list)  # the EHR model: failed, junk, nothing
    # The EHR model that wrote the flags and summary (None: record only), and its prompt's version.
    judged_by: ModelInfo | None = None
    judgement_prompt_version: str | None = None
    retrieved_at: str = Field(default_factory=utc_now_iso)


# --- Transcript -----------------------------------------------------------------------------


class Word(BaseModel):
    text: str
    start_s: float
    end_s: float
    confidence: float = 1.0


class Correction(BaseModel):
    """A record-aware correction of an ASR word; both forms are kept and shown."""

    original: str
    corrected: str
    start_s: float | None = None
    end_s: float | None = None
    score: float
    source: SourceRef | None = None
    char_start: int | None = None  # where the heard words were, in the text before correction
    char_end: int | None = None


class SoundAlikeFlag(BaseModel):
    """A heard word that resembles a record term but is itself a known drug or medical term: never
    rewritten, shown to the clinician with the record term(s) it might have been."""

    heard: str
    candidates: list[str]
    start_s: float | None = None
    end_s: float | None = None
    char_start: int | None = None  # in the text before correction
    char_end: int | None = None


class Transcript(BaseModel):
    text: str
    words: list[Word] = Field(default_factory=list)
    duration_s: float = 0.0
    origin: Literal["asr", "typed", "imported_text"] = "asr"
    provider: str | None = None  # e.g. CUDAExecutionProvider / CPUExecutionProvider
    model: str | None = None
    model_sha256: str | None = None  # the acoustic model file that produced it (ASR transcripts)
    corrections: list[Correction] = Field(default_factory=list)
    sound_alike_flags: list[SoundAlikeFlag] = Field(default_factory=list)
    processing_s: float | None = None
    created_at: str = Field(default_factory=utc_now_iso)

    @property
    def word_count(self) -> int:
        return len(self.text.split())


# --- Letter ---------------------------------------------------------------------------------


DocumentType = Literal["clinic", "soap", "referral", "patient"]
DOCUMENT_TYPES: tuple[DocumentType, ...] = get_args(DocumentType)  # the one list of document types


class DocumentSection(BaseModel):
    key: str
    heading: str
    content: str
    kind: Literal["facts", "narrative"] = "narrative"
    editable: bool = True
    generated_by: str | None = None  # model name for narrative sections
    edited_by: str | None = None  # the clinician whose words these now are (set when they edit it)
    fhir_sources: list[str] = Field(default_factory=list)


class Evidence(BaseModel):
    kind: Literal["transcript", "record"]
    span: TranscriptSpan | None = None
    source: SourceRef | None = None
    text: str | None = None


class LetterEdit(BaseModel):
    """A change a resolution made to the letter's text, kept so that it can be undone."""

    section_key: str
    start: int  # where `after` begins in the section's text
    before: str
    after: str


# use_record / use_said: the letter now states that source's value; keep_both: the letter states
# both in agreed wording; dismiss: not a discrepancy (a reason is required). "fix" is the earlier
# "I corrected the letter myself", kept so drafts saved with it still open.
ResolutionAction = Literal["use_record", "use_said", "keep_both", "dismiss", "fix"]


class Resolution(BaseModel):
    action: ResolutionAction
    reason: str | None = None
    by: str | None = None
    at: str = Field(default_factory=utc_now_iso)
    edits: list[LetterEdit] = Field(default_factory=list)  # none: the letter's text was not changed


DiscrepancyKind = Literal[
    "dose", "frequency", "allergy", "allergy_class", "lab_value", "unrecorded_medicine", "stopped_medicine",
    "diagnosis", "other",
]  # fmt: skip


class Discrepancy(BaseModel):
    id: str
    kind: DiscrepancyKind
    description: str
    subject: str | None = None  # canonical name: "ramipril", "GAD-7", "ACE inhibitors"
    transcript: TranscriptSpan
    record_text: str | None = None
    record_source: SourceRef | None = None
    severity: Literal["high", "medium", "low"] = "medium"
    resolution: Resolution | None = None
    # The two values in conflict, as a letter would write them ("10 mg" / "5 mg"); None for kinds
    # where there is no single value to choose (a denied allergy, a diagnosis not on the list).
    said_value: str | None = None
    record_value: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_kind(cls, data: Any) -> Any:
        """Drafts saved before the medicine kinds were split say "medication"."""
        if isinstance(data, dict) and data.get("kind") == "medication":
            stopped = "not taking" in str(data.get("description", ""))
            data = {**data, "kind": "stopped_medicine" if stopped else "unrecorded_medicine"}
        return data


class FactCheckItem(BaseModel):
    section_key: str
    text: str
    kind: Literal["date", "number", "dose", "frequency", "drug", "allergy", "lab"]
    char_start: int
    char_end: int
    supported: bool
    evidence: list[Evidence] = Field(default_factory=list)
    group: int | None = None  # facts of one clause (a drug, its dose and frequency) share a group


class ClinicalDocument(BaseModel):
    consultation_id: str
    doc_type: DocumentType = "clinic"
    letter_date: str
    patient_name: str
    patient_dob: str
    nhs_number: str | None = None
    addressee: str = ""
    salutation: str = ""
    sections: list[DocumentSection]
    medications_list: list[str] = Field(default_factory=list)
    sign_off: str = ""
    discrepancies: list[Discrepancy] = Field(default_factory=list)
    fact_check: list[FactCheckItem] = Field(default_factory=list)
    model: ModelInfo | None = None
    prompt_template_version: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    generated_at: str = Field(default_factory=utc_now_iso)


# --- Pipeline -------------------------------------------------------------------------------


class PipelineStage(StrEnum):
    TRANSCRIBING = "transcribing"
    RETRIEVING_CONTEXT = "retrieving_context"
    GENERATING_DOCUMENT = "generating_document"
    COMPLETE = "complete"
    FAILED = "failed"


class PipelineProgress(BaseModel):
    consultation_id: str
    stage: PipelineStage
    progress_pct: int = Field(ge=0, le=100)
    message: str


class ErrorResponse(BaseModel):
    error: Literal["model_error", "fhir_error", "audio_error", "timeout", "cancelled", "not_found"]
    message: str  # shown to the clinician
    detail: str | None = None  # logged, never shown
    consultation_id: str | None = None
    timestamp: str = Field(default_factory=utc_now_iso)
