"""A whole consultation without a window: transcribe, read the record, draft, sign, export, write
back. `run-consultation` is a thin command over `run_headless`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clarke_desktop.identity import SignInError, Unlocked
from clarke_desktop.letters.discrepancies import is_red
from clarke_desktop.schemas import Discrepancy, DocumentType, Resolution, ResolutionAction, Transcript
from clarke_desktop.session.errors import NotSigned, SessionError, TranscriptNeeded
from clarke_desktop.session.events import EventSink, ignore

if TYPE_CHECKING:
    from clarke_desktop.pipeline import PipelineResult
    from clarke_desktop.session.service import ConsultationService


@dataclass(frozen=True)
class HeadlessRequest:
    patient_id: str
    signed_in: Unlocked  # the account that signs: its name and registration go on the letter
    out_dir: Path
    doc_type: DocumentType = "clinic"
    audio_path: Path | None = None
    transcript: Transcript | None = None
    aside: str = ""
    strict: bool = False  # refuse to sign while discrepancies are open
    allow_empty_sections: bool = False  # sign even with a narrative section left empty (PDF and audit say so)
    max_section_tokens: int | None = None
    # Explicit resolutions by discrepancy id: (action, reason). A red item (an allergy, or any
    # high-severity conflict) is never resolved by default: it must be named here.
    resolutions: dict[str, tuple[ResolutionAction, str | None]] = field(default_factory=dict)


def run_headless(request: HeadlessRequest, on_event: EventSink = ignore) -> dict[str, Any]:
    """Run the consultation through the same service the GUI uses and return its summary (the
    `run-consultation --json` document). Raises SessionError (TranscriptNeeded, NotSigned) with a
    message for the user."""
    from clarke_desktop.config import SettingsError
    from clarke_desktop.pipeline import EmptySections
    from clarke_desktop.session.identity import Identity, require_signer
    from clarke_desktop.session.service import ConsultationService
    from clarke_desktop.store import StoreError

    try:
        require_signer(request.signed_in)
    except SignInError as exc:
        raise SessionError(exc.user_text) from exc
    identity = Identity()
    try:
        service = ConsultationService(signed_in=request.signed_in, identity=identity)
    except (SettingsError, StoreError) as exc:
        identity.close()
        raise SessionError(str(exc)) from exc
    try:
        cid = service.start_consultation(request.patient_id, doc_type=request.doc_type, new=True)
        started = time.perf_counter()
        result = _draft(service, cid, request, on_event)
        pipeline_s = time.perf_counter() - started
        _resolve_named(service, cid, result.document.discrepancies, request)
        document = service.resume(cid).letter
        assert document is not None
        red_items = [d for d in document.discrepancies if d.resolution is None and is_red(d)]
        red = [d.id for d in red_items]
        if red:
            raise NotSigned(
                f"Not signed: {len(red)} red discrepanc{'y' if len(red) == 1 else 'ies'} (allergy or dose conflicts) "
                f"must each be resolved by name: {', '.join(red)}. Re-run with --resolve ID=ACTION for each "
                "(use_record, use_said, keep_both, or dismiss:REASON); the draft is saved as consultation "
                f"{cid}.",
                consultation_id=cid,
                open=[{"id": d.id, "kind": d.kind, "severity": d.severity, "description": d.description,
                       "said_value": d.said_value or "", "record_value": d.record_value or ""} for d in red_items],
            )  # fmt: skip
        open_ids = [d.id for d in document.discrepancies if d.resolution is None]
        if request.strict and open_ids:
            raise NotSigned(
                f"Not signed: {len(open_ids)} discrepancies need review ({', '.join(open_ids)}); "
                f"the draft is saved as consultation {cid}."
            )
        started = time.perf_counter()
        try:
            final = service.sign_off(
                cid,
                out_dir=request.out_dir,
                keep_open_discrepancies=not request.strict,
                allow_empty_sections=request.allow_empty_sections,
            )
        except EmptySections as exc:
            raise NotSigned(f"{exc.message} The draft is saved as consultation {cid}.") from exc
        finalise_s = time.perf_counter() - started
        head = service.audit_head()
        latest = service.letter_version(cid, final.version)
    except StoreError as exc:
        raise SessionError(str(exc)) from exc
    finally:
        service.close()
        identity.close()
    return _summary(cid, request, result, final, latest, pipeline_s, finalise_s, head)


def _resolve_named(
    service: ConsultationService, cid: str, found: list[Discrepancy], request: HeadlessRequest
) -> None:
    known = {d.id for d in found}
    unknown = sorted(set(request.resolutions) - known)
    if unknown:
        raise NotSigned(
            f"Not signed: --resolve names {', '.join(unknown)}, which this draft does not have "
            f"(its discrepancies: {', '.join(sorted(known)) or 'none'}); the draft is saved as consultation {cid}."
        )
    for discrepancy_id, (action, reason) in request.resolutions.items():
        service.resolve_discrepancy(cid, discrepancy_id, Resolution(action=action, reason=reason))


def _draft(
    service: ConsultationService, consultation_id: str, request: HeadlessRequest, on_event: EventSink
) -> PipelineResult:
    from clarke_desktop.pipeline import PipelineError, TranscriptRequired

    if request.audio_path is not None:
        service.import_audio(consultation_id, request.audio_path)
    try:
        return service.draft(
            consultation_id,
            transcript=request.transcript,
            audio_path=request.audio_path,
            aside=request.aside,
            doc_type=request.doc_type,
            on_event=on_event,
            max_section_tokens=request.max_section_tokens,
        )
    except TranscriptRequired as exc:
        raise TranscriptNeeded(f"{exc}\nRe-run with --transcript FILE.") from exc
    except PipelineError as exc:
        raise SessionError(f"{exc.message} (consultation {consultation_id})") from exc


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
