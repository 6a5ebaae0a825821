"""Realistic sample data for workflow tests (demo patient 1 of the blueprint, §8b)."""

from __future__ import annotations

from clarke_desktop.schemas import (
    Allergy,
    ClinicalDocument,
    Demographics,
    Discrepancy,
    DocumentSection,
    LabResult,
    Medication,
    ModelInfo,
    PatientContext,
    Problem,
    SourceRef,
    Transcript,
    TranscriptSpan,
)

TRANSCRIPT_TEXT = (
    "Good morning Mrs Thompson. How have you been since we last met? Not too bad doctor, but I have "
    "been more tired and thirsty. Your HbA1c has gone up to 55 from 48. You are still on metformin one "
    "gram twice a day. Your kidney function, eGFR, is 52, a little lower than before. I'd like to start "
    "gliclazide 40 milligrams once daily with breakfast. You are allergic to penicillin, is that right? "
    "Yes, I get a rash. We will repeat the HbA1c in three months."
)


def transcript() -> Transcript:
    return Transcript(text=TRANSCRIPT_TEXT, duration_s=62.0, origin="typed")


def context() -> PatientContext:
    pt = SourceRef(resource_type="Patient", id="pt-001", version_id="1")
    return PatientContext(
        patient_id="pt-001",
        demographics=Demographics(
            name="Mrs Margaret Thompson",
            date_of_birth="1958-03-14",
            nhs_number="9434765829",
            age=67,
            sex="female",
            address="12 Oak Lane, London, SE1 4AB",
            gp_name="Dr R. Patel",
            gp_practice="Riverside Medical Centre",
            source=pt,
        ),
        problem_list=[
            Problem(
                name="Type 2 diabetes mellitus",
                status="active",
                source=SourceRef(resource_type="Condition", id="cond-001", version_id="2"),
            )
        ],
        medications=[
            Medication(
                name="Metformin",
                dose="1 g",
                frequency="twice daily",
                source=SourceRef(resource_type="MedicationRequest", id="med-001", version_id="1"),
            )
        ],
        allergies=[
            Allergy(
                substance="Penicillin",
                reaction="Rash",
                source=SourceRef(resource_type="AllergyIntolerance", id="alg-001", version_id="1"),
            )
        ],
        recent_labs=[
            LabResult(
                name="HbA1c",
                value="55",
                unit="mmol/mol",
                date="2026-01-20",
                trend="rising",
                previous_value="48",
                source=SourceRef(resource_type="Observation", id="obs-hba1c-2", version_id="1"),
                previous_source=SourceRef(resource_type="Observation", id="obs-hba1c-1", version_id="1"),
            )
        ],
    )


def document(consultation_id: str, *, demo: bool = True, discrepancy: bool = True) -> ClinicalDocument:
    sections = [
        DocumentSection(
            key="history",
            heading="History of presenting complaint",
            content="Mrs Thompson reported increasing tiredness and thirst since her last review.",
        ),
        DocumentSection(
            key="investigations",
            heading="Investigation results",
            content="HbA1c 55 mmol/mol (previously 48 mmol/mol). eGFR 52 mL/min/1.73m\u00b2, <60.",
            kind="facts",
        ),
        DocumentSection(
            key="plan",
            heading="Assessment and plan",
            content="Start gliclazide 40 mg once daily with breakfast.\n\nRepeat HbA1c in three months.",
        ),
    ]
    discrepancies = []
    if discrepancy:
        discrepancies.append(
            Discrepancy(
                id="d1",
                kind="lab_value",
                description="eGFR stated as 52; the record's latest eGFR is 50",
                transcript=TranscriptSpan(text="eGFR, is 52"),
                record_text="eGFR 50",
                record_source=SourceRef(resource_type="Observation", id="obs-egfr-2", version_id="1"),
            )
        )
    return ClinicalDocument(
        consultation_id=consultation_id,
        letter_date="2026-02-13",
        patient_name="Mrs Margaret Thompson",
        patient_dob="1958-03-14",
        nhs_number="9434765829",
        addressee="Dr R. Patel\nRiverside Medical Centre",
        salutation="Dear Dr Patel,",
        sections=sections,
        medications_list=["Metformin 1 g twice daily", "Gliclazide 40 mg once daily (new)"],
        discrepancies=discrepancies,
        model=ModelInfo(
            name="gemma-3-270m (embedded demo)", role="letter_writer", sha256="ab" * 32, demo=demo
        ),
        prompt_template_version="letter-v1",
    )
