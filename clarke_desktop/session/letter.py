"""A letter from a transcript and the patient's record, with the installed (or embedded demo) models:
what `clarke-desktop letter` runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from clarke_desktop.schemas import ClinicalDocument, Clinician, Transcript
from clarke_desktop.session.errors import SessionError


def write_letter(
    patient_id: str,
    transcript: Transcript,
    *,
    doc_type: str = "clinic",
    max_tokens: int = 0,
    with_flags: bool = True,
    clinician: Clinician | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> ClinicalDocument:
    """Read the record (with the EHR model's flags unless `with_flags` is false) and write the
    document (`max_tokens` per narrative section; 0: the writer's default). Raises SessionError
    with a message for the user."""
    from clarke_desktop.agent.context import PatientMissing, build_context
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.letters.writer import DEFAULT_SECTION_TOKENS, write_document
    from clarke_desktop.llm.base import LlmError
    from clarke_desktop.llm.registry import get_engine
    from clarke_desktop.templates import TemplateError

    timings: dict[str, float] = {}
    try:
        fhir = open_record()
        try:
            context = build_context(
                fhir, patient_id, engine=get_engine("ehr_agent") if with_flags else None, timings=timings
            )
        finally:
            fhir.close()
        return write_document(
            transcript, context, get_engine("letter_writer"), doc_type=doc_type,  # type: ignore[arg-type]
            clinician=clinician, letter_date=date.today(), max_tokens=max_tokens or DEFAULT_SECTION_TOKENS, on_event=on_event, timings=timings,
        )  # fmt: skip
    except PatientMissing as exc:
        raise SessionError(f"{exc} Check the id (demo patients: pt-001 to pt-005).") from exc
    except (FhirError, LlmError, TemplateError, ValueError, RuntimeError) as exc:
        raise SessionError(str(exc)) from exc


def open_record() -> Any:
    """The FHIR store in use (the app's own one is created from the bundled dataset on first use)."""
    from clarke_desktop.demo_data import ensure_database
    from clarke_desktop.fhir.local import LocalFhirClient

    return LocalFhirClient(ensure_database())
