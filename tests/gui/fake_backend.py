"""An in-memory stand-in for the ConsultationService, for testing the GUI's own logic (navigation, gating, threading).

It is a fake *around* the core, never in place of the core's own tests: the full-flow test
(test_full_flow.py) drives the real ConsultationService with the embedded models. Every call records
the thread it ran on, so tests can assert that nothing slow ran on the GUI thread.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from clarke_desktop.cancel import CancelToken
from clarke_desktop.pipeline import FinaliseResult, PipelineResult, SignOffPreview
from clarke_desktop.schemas import (
    Allergy,
    ClinicalDocument,
    Clinician,
    ClinicPatient,
    ConsultationStatus,
    Demographics,
    Discrepancy,
    DocumentSection,
    Evidence,
    FactCheckItem,
    LabResult,
    Medication,
    ModelInfo,
    PatientContext,
    PipelineProgress,
    PipelineStage,
    Problem,
    Resolution,
    SourceRef,
    Transcript,
    TranscriptSpan,
)
from clarke_desktop.session.events import SectionDelta, TranscriptReady, ignore
from clarke_desktop.session.views import (
    AppSettings,
    AsrStatus,
    AssistantAnswer,
    AssistantStep,
    Check,
    Draft,
    MicStatus,
    ModelRow,
    ModelStatus,
    Proposal,
)

_WEIGHT = {"resourceType": "Observation", "status": "final", "code": {"text": "Body weight"},
           "subject": {"reference": "Patient/pt-001"}, "valueQuantity": {"value": 112, "unit": "kg"}}  # fmt: skip


def _proposal(proposal_id: str, status: str = "pending") -> Proposal:
    """The assistant's proposal as the real service shows it: every element a line, and its digest."""
    from clarke_desktop.agent.proposal_policy import describe, resource_digest

    return Proposal(proposal_id, "Observation/(new): Body weight; 112 kg", "Observation", status,
                    lines=describe(_WEIGHT), digest=resource_digest(_WEIGHT))  # fmt: skip


class FakeBackend:
    def __init__(self, *, step_delay: float = 0.0, fail_generate: Exception | None = None,
                 account: object | None = None, password: str = "") -> None:  # fmt: skip
        self.account = account  # None: no accounts (no re-authentication asked)
        self.password = password
        self.calls: list[tuple[str, int]] = []
        self.step_delay = step_delay
        self.fail_generate = fail_generate
        self.saved: dict[str, str] = {}
        self.resolved: dict[str, Resolution] = {}
        self.signed: list[ClinicalDocument] = []
        self.statuses_: dict[str, ConsultationStatus] = {}
        self.tmp = Path(threading.current_thread().name)
        self.inputs: dict[str, tuple[str, str]] = {}  # consultation id -> (transcript, aside) autosaved
        self.letters: dict[str, ClinicalDocument] = {}  # consultation id -> latest draft
        self.copies: list[tuple[str, int, Path]] = []  # readable copies saved: (consultation, version, file)

    def _log(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def clinic(self):
        self._log("clinic")
        return Clinician(name="Dr Sarah Chen", specialty="Diabetes & Endocrinology"), [
            ClinicPatient(
                id="pt-001",
                nhs_number="943 476 5829",
                name="Mrs Margaret Thompson",
                date_of_birth="14/03/1958",
                age=67,
                sex="F",
                appointment_time="09:00",
                summary="T2DM review, rising HbA1c",
            ),
            ClinicPatient(
                id="pt-002",
                nhs_number="943 476 5837",
                name="Mr Emeka Okafor",
                date_of_birth="02/07/1971",
                age=54,
                sex="M",
                appointment_time="09:20",
                summary="Chest pain follow-up",
            ),
        ]

    def statuses(self):
        self._log("statuses")
        return dict(self.statuses_)

    def unfinished(self):
        return []

    def save_inputs(self, consultation_id, transcript, aside):
        self._log("save_inputs")
        text = transcript if isinstance(transcript, str) else transcript.text
        self.inputs[consultation_id] = (text, aside)

    def resume(self, consultation_id):
        self._log("resume")
        text, aside = self.inputs.get(consultation_id, ("", ""))
        letter = self.letters.get(consultation_id)
        transcript = Transcript(text=text, origin="typed") if text else None
        return Draft(consultation_id, transcript, aside, letter, False)

    def model_status(self):
        self._log("model_status")
        return ModelStatus("demo", [ModelRow("letter", "Gemma 3 270M (embedded)", "demo", device="CPU")])

    def asr_status(self):
        return AsrStatus(False, "MedASR is not installed.")

    def microphones(self):
        return MicStatus([], "No microphone found.")

    def patient_context(self, patient_id: str, cancel: CancelToken) -> PatientContext:
        self._log("patient_context")
        src = SourceRef(resource_type="Observation", id="obs-1", version_id="1")
        return PatientContext(
            patient_id=patient_id,
            demographics=Demographics(
                name="Mrs Margaret Thompson",
                date_of_birth="1958-03-14",
                nhs_number="943 476 5829",
                age=67,
                sex="female",
            ),
            problem_list=[
                Problem(
                    name="Type 2 diabetes mellitus",
                    onset="2019",
                    source=SourceRef(resource_type="Condition", id="c1"),
                )
            ],
            medications=[
                Medication(
                    name="Metformin",
                    dose="1 g",
                    frequency="twice daily",
                    source=SourceRef(resource_type="MedicationRequest", id="m1"),
                )
            ],
            allergies=[
                Allergy(
                    substance="Penicillin",
                    reaction="rash",
                    severity="moderate",
                    source=SourceRef(resource_type="AllergyIntolerance", id="a1"),
                )
            ],
            recent_labs=[
                LabResult(
                    name="HbA1c",
                    value="55",
                    unit="mmol/mol",
                    reference_range="20-42",
                    date="2026-01-10",
                    trend="rising",
                    previous_value="48",
                    previous_date="2025-07-02",
                    source=src,
                )
            ],
        )

    def start_consultation(self, patient_id: str) -> str:
        self._log("start_consultation")
        self.statuses_[patient_id] = ConsultationStatus.WAITING
        return f"cons-{patient_id}"

    def demo_transcript_path(self, patient_id: str):
        return None

    def demo_audio_path(self, patient_id: str):
        return None

    def start_recording(self, consultation_id, device):
        raise RuntimeError("no microphone in the fake")

    interrupted: dict = {"drafts": [], "recordings": [], "writebacks": []}  # noqa: RUF012
    recovered = False

    def interrupted_work(self, *, recover=False):
        self._log("interrupted_work")
        self.recovered = self.recovered or recover
        return self.interrupted

    def recording_stopped(self, consultation_id, wav_path, live, cancel, *, duration_s=0.0):
        raise RuntimeError("no microphone in the fake")

    def transcript_from_text(self, consultation_id: str, text: str) -> Transcript:
        self._log("transcript_from_text")
        return Transcript(text=text, origin="typed")

    def transcript_from_audio(self, consultation_id, path, progress, cancel):
        raise RuntimeError("no ASR in the fake")

    def draft(self, consultation_id, *, transcript=None, audio_path=None, aside="", doc_type="clinic",
              on_event=ignore, cancel=None, max_section_tokens=None) -> PipelineResult:  # fmt: skip
        self._log("draft")
        progress, cancel = on_event, cancel or CancelToken()
        if transcript is not None:
            progress(TranscriptReady(transcript))
        for stage in (PipelineStage.TRANSCRIBING, PipelineStage.RETRIEVING_CONTEXT):
            progress(
                PipelineProgress(consultation_id=consultation_id, stage=stage, progress_pct=100, message="ok")
            )
        if self.fail_generate:
            raise self.fail_generate
        sections = [("history", "History"), ("plan", "Plan")]
        for key, heading in sections:
            text = ""
            for word in f"{heading} text written by the fake model .".split():
                cancel.raise_if_cancelled()
                text += word + " "
                progress(SectionDelta(key, heading, text.strip()))
                time.sleep(self.step_delay)
            progress(SectionDelta(key, heading, text.strip(), done=True))
        document = ClinicalDocument(
            consultation_id=consultation_id,
            doc_type=doc_type,
            letter_date="2026-11-22",
            patient_name="Mrs Margaret Thompson",
            patient_dob="14/03/1958",
            sections=[
                DocumentSection(key="history", heading="History", content="HbA1c 55 mmol/mol today."),
                DocumentSection(key="plan", heading="Plan", content="Start gliclazide 40 mg."),
            ],
            discrepancies=[
                Discrepancy(
                    id="d1",
                    kind="allergy",
                    severity="high",
                    description="Patient said no allergies; record shows penicillin",
                    transcript=TranscriptSpan(text="no allergies", start_s=12.0, end_s=13.1),
                    record_text="Penicillin (rash)",
                    record_source=SourceRef(resource_type="AllergyIntolerance", id="a1"),
                ),
                Discrepancy(
                    id="d2",
                    kind="dose",
                    severity="high",
                    description="Gliclazide: dose said 80 mg; prescribed 40 mg.",
                    subject="gliclazide",
                    transcript=TranscriptSpan(text="gliclazide eighty milligrams", start_s=40.0, end_s=42.0),
                    record_text="Gliclazide 40 mg tablets, 40 mg once daily",
                    record_source=SourceRef(resource_type="MedicationRequest", id="m1"),
                    said_value="80 mg",
                    record_value="40 mg",
                ),
            ],
            fact_check=[
                FactCheckItem(
                    section_key="history",
                    text="55",
                    kind="number",
                    char_start=6,
                    char_end=8,
                    supported=True,
                    evidence=[
                        Evidence(
                            kind="record",
                            source=SourceRef(resource_type="Observation", id="obs-1"),
                            text="HbA1c 55 mmol/mol",
                        )
                    ],
                )
            ],
            model=ModelInfo(name="gemma-3-270m", role="letter", demo=True),
        )
        self.letters[consultation_id] = document
        return PipelineResult(
            consultation_id, transcript, self.patient_context("pt-001", cancel), document, 1
        )

    def regenerate_section(self, consultation_id, document, section_key, instruction, on_event, cancel):
        self._log("regenerate_section")
        new = document.model_copy(deep=True)
        for sec in new.sections:
            if sec.key == section_key:
                sec.content = f"Rewritten: {instruction}"
        self.letters[consultation_id] = new
        return new

    def confirm_consent(self, consultation_id):
        self._log("confirm_consent")

    def save_section(self, consultation_id, section_key, content):
        self._log("save_section")
        self.saved[section_key] = content
        doc = self.letters.get(consultation_id)
        if doc is not None:
            doc = doc.model_copy(deep=True)
            next(s for s in doc.sections if s.key == section_key).content = content
            self.letters[consultation_id] = doc
            return doc
        return None

    def reauthenticate(self, password, *, purpose):
        from clarke_desktop.identity import SignInError

        self._log(f"reauthenticate:{purpose}")
        if password != self.password:
            raise SignInError("Wrong user name or password.")

    def resolve_discrepancy(self, consultation_id, discrepancy_id, resolution):
        """As the service does: the letter changed by the action (letters.amend), then returned."""
        from clarke_desktop.letters import amend

        self._log("resolve_discrepancy")
        self.resolved[discrepancy_id] = resolution
        doc = self.letters[consultation_id]
        target = next(d for d in doc.discrepancies if d.id == discrepancy_id)
        doc, edits = amend.apply(doc, target, resolution.action)
        doc = doc.model_copy(deep=True)
        for s in doc.sections:  # the rewritten sections are the clinician's words now
            if any(e.section_key == s.key for e in edits):
                s.edited_by = "Dr Sarah Chen"
        next(d for d in doc.discrepancies if d.id == discrepancy_id).resolution = resolution.model_copy(
            update={"edits": edits}
        )
        self.letters[consultation_id] = doc
        return doc

    def undo_resolution(self, consultation_id, discrepancy_id):
        from clarke_desktop.letters import amend

        self._log("undo_resolution")
        self.resolved.pop(discrepancy_id, None)
        doc = self.letters[consultation_id]
        target = next(d for d in doc.discrepancies if d.id == discrepancy_id)
        doc = amend.undo(doc, target.resolution.edits if target.resolution else [])
        next(d for d in doc.discrepancies if d.id == discrepancy_id).resolution = None
        self.letters[consultation_id] = doc
        return doc

    def preview_sign_off(self, consultation_id, document):
        self._log("preview_sign_off")
        self.previewed = document
        return SignOffPreview(Path("/nonexistent/preview.pdf"), "Dr Sarah Chen", "Dr Sarah Chen, Consultant",
                              "The demo record on this computer, and a PDF.", [])  # fmt: skip

    def discard_preview(self, preview):
        self._log("discard_preview")

    def sign_off(self, consultation_id, document=None, *, out_dir=None, keep_open_discrepancies=False,
                 allow_empty_sections=False):  # fmt: skip
        self._log("sign_off")
        self.signed.append(document)
        return FinaliseResult(
            consultation_id=consultation_id,
            version=2,
            pdf_path=Path("/nonexistent/letter.pdf"),
            pdf_sha256="0" * 64,
            document_reference="DocumentReference/dr-1",
            signed_at="2026-11-22T09:30:00Z",
            signed_by="Dr Sarah Chen",
            pdf_encrypted=True,
        )

    def save_pdf_copy(self, consultation_id, version, target):
        self._log("save_pdf_copy")
        self.copies.append((consultation_id, version, target))
        return target

    def ask_assistant(self, patient_id, question, step, cancel):
        self._log("ask_assistant")
        step(AssistantStep("search", "Observation?code=HbA1c"))
        return AssistantAnswer(
            text="HbA1c was 55.",
            citations=[SourceRef(resource_type="Observation", id="obs-1")],
            proposals=[_proposal("p1")],
            demo_model=True,
        )

    def decide_proposal(self, patient_id, proposal_id, approve):
        return _proposal(proposal_id, "approved" if approve else "rejected")

    def settings(self):
        return AppSettings(clinician_name="Dr Sarah Chen")

    def verify_models(self):
        self.models_verified = True
        return {}

    def save_settings(self, settings):
        self.saved_settings = settings

    def diagnostics(self):
        return [Check("FHIR store", True, "50 patients"), Check("MedASR", False, "not installed")]

    def close(self):
        pass
