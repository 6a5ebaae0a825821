"""A whole consultation without a window: transcribe, read the record, draft, sign, export, write
back. `run-consultation` is a thin command over `run_headless`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clarke_desktop.schemas import PipelineProgress, Transcript
from clarke_desktop.session.errors import NotSigned, SessionError, TranscriptNeeded


@dataclass(frozen=True)
class HeadlessRequest:
    patient_id: str
    signed_by: str
    out_dir: Path
    doc_type: str = "clinic"
    audio_path: Path | None = None
    transcript: Transcript | None = None
    aside: str = ""
    strict: bool = False  # refuse to sign while discrepancies are open
    allow_empty_sections: bool = False  # sign even with a narrative section left empty (PDF and audit say so)
    max_section_tokens: int | None = None


def run_headless(
    request: HeadlessRequest, on_progress: Callable[[PipelineProgress], None] | None = None
) -> dict[str, Any]:
    """Run the consultation and return its summary (the `run-consultation --json` document).
    Raises SessionError (TranscriptNeeded, NotSigned) with a message for the user."""
    from clarke_desktop.config import SettingsError, load_settings
    from clarke_desktop.pipeline import ConsultationPipeline, EmptySections, apply_retention
    from clarke_desktop.pipeline.components import default_components
    from clarke_desktop.store import AppStore, StoreError

    try:
        settings = load_settings()
        store = AppStore()
    except (SettingsError, StoreError) as exc:
        raise SessionError(str(exc)) from exc
    pipeline = ConsultationPipeline(
        default_components(settings), settings=settings, store=store, actor=request.signed_by
    )
    try:
        apply_retention(store, settings)
        record = store.create_consultation(
            request.patient_id, clinician=request.signed_by, doc_type=request.doc_type
        )  # type: ignore[arg-type]
        started = time.perf_counter()
        result = _draft(pipeline, store, record.id, request, on_progress)
        pipeline_s = time.perf_counter() - started
        open_ids = [d.id for d in result.document.discrepancies if d.resolution is None]
        if request.strict and open_ids:
            raise NotSigned(
                f"Not signed: {len(open_ids)} discrepancies need review ({', '.join(open_ids)}); "
                f"the draft is saved as consultation {record.id}."
            )
        started = time.perf_counter()
        try:
            final = _sign_and_export(store, record.id, request, settings)
        except EmptySections as exc:
            raise NotSigned(f"{exc.message} The draft is saved as consultation {record.id}.") from exc
        finalise_s = time.perf_counter() - started
        head_seq, head_hash = store.audit_head()
        latest = store.letter_version(record.id, final.version).document
    except StoreError as exc:
        raise SessionError(str(exc)) from exc
    finally:
        pipeline.close()
        store.close()
    return _summary(record.id, request, result, final, latest, pipeline_s, finalise_s, (head_seq, head_hash))


def _draft(pipeline: Any, store: Any, consultation_id: str, request: HeadlessRequest,
           on_progress: Callable[[PipelineProgress], None] | None) -> Any:  # fmt: skip
    from clarke_desktop.pipeline import ConsultationRequest, PipelineError, TranscriptRequired

    if request.audio_path is not None:
        store.import_audio(consultation_id, request.audio_path, actor=request.signed_by)
    try:
        return pipeline.run(
            ConsultationRequest(
                consultation_id=consultation_id,
                patient_id=request.patient_id,
                doc_type=request.doc_type,  # type: ignore[arg-type]
                audio_path=request.audio_path,
                transcript=request.transcript,
                aside=request.aside,
                max_section_tokens=request.max_section_tokens,
            ),
            on_progress=on_progress,
        )
    except TranscriptRequired as exc:
        raise TranscriptNeeded(f"{exc}\nRe-run with --transcript FILE.") from exc
    except PipelineError as exc:
        raise SessionError(f"{exc.message} (consultation {consultation_id})") from exc


def _sign_and_export(store: Any, consultation_id: str, request: HeadlessRequest, settings: Any) -> Any:
    """Sign, export the PDF and write back; an unavailable FHIR store only skips the write-back (the
    result's warnings say so)."""
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.pipeline import sign_off_and_export
    from clarke_desktop.pipeline.components import open_fhir

    try:
        fhir = open_fhir(settings)
    except FhirError:
        fhir = None
    try:
        return sign_off_and_export(
            store, consultation_id, request.signed_by, request.out_dir, settings=settings, fhir=fhir,
            headless=not request.strict, allow_empty_sections=request.allow_empty_sections,
        )  # fmt: skip
    finally:
        if fhir is not None:
            fhir.close()


def _summary(consultation_id: str, request: HeadlessRequest, result: Any, final: Any, latest: Any,
             pipeline_s: float, finalise_s: float, head: tuple[int, str]) -> dict[str, Any]:  # fmt: skip
    return {
        "consultation_id": consultation_id,
        "patient_id": request.patient_id,
        "doc_type": request.doc_type,
        "timings_s": {
            **result.timings,
            "sign_off_export_writeback": round(finalise_s, 4),
            "total": round(pipeline_s + finalise_s, 4),
        },
        "inference_s": result.inference_s,
        "model_load_s": result.load_s,
        "attempts": result.attempts,
        "warnings": [*result.warnings, *final.warnings],
        "degraded": result.degraded,
        "model": result.document.model.model_dump() if result.document.model else None,
        "transcript": {"origin": result.transcript.origin, "words": result.transcript.word_count},
        "discrepancies": [
            {
                "id": d.id,
                "kind": d.kind,
                "severity": d.severity,
                "description": d.description,
                "resolution": d.resolution.model_dump() if d.resolution else None,
            }
            for d in latest.discrepancies
        ],
        "auto_resolved": final.auto_resolved,
        "letter_version": final.version,
        "signed_by": final.signed_by,
        "signed_at": final.signed_at,
        "pdf": str(final.pdf_path),
        "pdf_sha256": final.pdf_sha256,
        "encounter": final.encounter,
        "document_reference": final.document_reference,
        "composition": final.composition,
        "audit_head": {"seq": head[0], "hash": head[1]},
    }
