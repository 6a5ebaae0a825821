"""After review: sign off, export the PDF, write back to the FHIR store, apply audio retention.

Sign-off commits first (it is the clinical act); the PDF and write-back follow and are each
audited. A write-back that fails leaves the letter signed and exported, with the failure reported,
so the clinician's work is never lost to a store that is down.

PDFs at rest: the signed PDF kept in the data folder (exports/) and the sign-off preview are sealed
(identity.sealed) once a sign-in has opened the data folder's key; whatever reads them (write-back,
its retry, the window's preview) decrypts in memory. The sha256 the store records for an export
(the exports row and its "exported" audit entry) is of the file as stored, so for a sealed PDF it
covers the sealed bytes: it pins that exact stored file, which is what the write-back retry checks
before sending anything. The PDF's own digests are in the FHIR attachment (SHA-1 of the PDF) and in
the audit entry of every readable copy (`export_copy`: sha256 of the PDF written, beside the stored
file's sha256). The only plaintext PDFs are such copies, written where the user chose (the window's
"Save a copy…", `run-consultation --out`), outside the data folder, each audited with its destination.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clarke_desktop import paths
from clarke_desktop.config import Settings
from clarke_desktop.fhir.client import FhirClient, FhirError
from clarke_desktop.files import atomic_write, file_sha256
from clarke_desktop.identity import sealed
from clarke_desktop.pdf import SignatureInfo, render_letter_pdf
from clarke_desktop.pipeline.errors import EmptySections
from clarke_desktop.schemas import ClinicalDocument, utc_now_iso
from clarke_desktop.store import AppStore, AudioRecord, AuditEvent, SignOffRecord, StoreError
from clarke_desktop.writeback import SignedLetter, write_back

log = logging.getLogger(__name__)

HEADLESS_REASON = "headless run: reviewed in output"


@dataclass
class FinaliseResult:
    @classmethod
    def of(cls, signoff: SignOffRecord, pdf_path: Path, pdf_sha256: str) -> FinaliseResult:
        return cls(
            signoff.consultation_id,
            signoff.version,
            signoff.signed_by,
            signoff.signed_at,
            pdf_path,
            pdf_sha256,
            pdf_encrypted=sealed.is_sealed(pdf_path),
        )

    consultation_id: str
    version: int
    signed_by: str
    signed_at: str
    pdf_path: Path  # the signed PDF: kept in the data folder, or the readable copy a run was asked for
    pdf_sha256: str  # of the file at pdf_path as it is on disk (sealed bytes when pdf_encrypted)
    encounter: str | None = None
    document_reference: str | None = None
    composition: str | None = None
    warnings: list[str] = field(default_factory=list)
    auto_resolved: list[str] = field(default_factory=list)
    pdf_encrypted: bool = False  # sealed: only Clarke (signed in) reads it; "Save a copy…" gives a PDF


@dataclass(frozen=True)
class ExportedCopy:
    """A readable copy of a signed PDF, written to a place the user chose."""

    path: Path
    sha256: str  # of the PDF written (plaintext)
    bytes: int


def letter_filename(consultation_id: str, version: int, signed_at: str) -> str:
    """The signed letter's file name: the consultation and when it was signed (the version number
    is kept in the PDF's metadata and the database, not shown to the reader)."""
    stamp = "".join(ch for ch in signed_at if ch.isdigit())[:14]
    return f"{consultation_id}-signed-{stamp}.pdf"


def empty_sections(document: ClinicalDocument) -> list[str]:
    """Headings of the narrative sections with no text (the facts sections always have some)."""
    return [s.heading for s in document.sections if s.kind == "narrative" and not s.content.strip()]


def sign_off_and_export(
    store: AppStore,
    consultation_id: str,
    signed_by: str,
    out_dir: Path,
    *,
    settings: Settings,
    fhir: FhirClient | None,
    resolve_open: Callable[[], list[str]] | None = None,
    allow_empty_sections: bool = False,
) -> FinaliseResult:
    """Sign the latest version, print it to PDF, record the export and write it back. A narrative
    section left empty refuses the sign-off (EmptySections) unless `allow_empty_sections`; then the
    PDF and the audit entry say which sections were not written. `resolve_open` (headless runs)
    resolves what is still open once the letter may be signed, returning the ids it resolved."""
    latest = store.latest_letter(consultation_id)
    empty = empty_sections(latest.document) if latest is not None else []
    if empty and not allow_empty_sections:
        raise EmptySections(empty)
    auto_resolved = resolve_open() if resolve_open is not None else []
    letter = store.latest_letter(consultation_id)  # with what resolve_open wrote into it
    if letter is None:
        raise StoreError(f"consultation {consultation_id} has no letter to sign")
    # The PDF first, then the sign-off: a full disk or a failed render leaves the letter unsigned
    # (to sign again), never signed without the PDF that shows it.
    at = utc_now_iso()
    kind = store.signoff_kind(consultation_id)
    pdf_path = render_letter_pdf(
        letter.document,
        Path(out_dir) / letter_filename(consultation_id, letter.version, at),
        settings=settings,
        context=store.latest_context(consultation_id),
        signature=SignatureInfo(signed_by, at, letter.version, kind),
    )
    try:
        signoff = store.sign_off(consultation_id, signed_by, not_written=empty, at=at, version=letter.version)
    except BaseException:
        pdf_path.unlink(missing_ok=True)  # nothing was signed: no signed-looking PDF stays behind
        raise
    pdf_sha = store.record_export(consultation_id, pdf_path, version=signoff.version, actor=signed_by)
    result = FinaliseResult.of(signoff, pdf_path, pdf_sha)
    result.auto_resolved = auto_resolved
    if fhir is None:
        result.warnings.append("Not written back: the FHIR store is unavailable. The signed PDF is saved.")
        return result
    _write_back(store, signoff, letter.document, pdf_path, settings, fhir, result)
    return result


@dataclass(frozen=True)
class SignOffPreview:
    """The letter exactly as it would be signed now, by this signer, and where it would go;
    nothing is signed or saved (the preview PDF is deleted once the clinician has decided)."""

    pdf_path: Path
    signed_by: str
    signer: str  # name, title and registration, as the signature block prints them
    destination: str  # where the signed letter will be written, in words
    empty_sections: list[str]


def preview_sign_off(
    store: AppStore, consultation_id: str, document: ClinicalDocument, signed_by: str, out_path: Path,
    *, settings: Settings,
) -> SignOffPreview:  # fmt: skip
    """Print `document` (the draft with the clinician's latest edits) as the signed PDF would be."""
    latest = store.latest_letter(consultation_id)
    version = latest.version if latest else 1
    pdf = render_letter_pdf(
        document, out_path, settings=settings, context=store.latest_context(consultation_id),
        signature=SignatureInfo(signed_by, utc_now_iso(), version),
    )  # fmt: skip
    c = settings.clinician
    signer = ", ".join(x for x in (signed_by, c.title, c.registration) if x)
    return SignOffPreview(pdf, signed_by, signer, destination(settings, document), empty_sections(document))


def destination(settings: Settings, document: ClinicalDocument) -> str:
    """Where a signed letter is written back, in the clinician's words."""
    if document.model is not None and document.model.demo and not writes_to_demo_store(settings):
        return "Not written to the record (demo model): the PDF only, for practice."
    if settings.fhir.backend == "remote":
        return f"The hospital record at {settings.fhir.remote_url}, and a PDF."
    if paths.fhir_db_is_named():
        return f"The record store {paths.fhir_db_path()}, and a PDF."
    return "The demo record on this computer, and a PDF."


DEMO_NOT_WRITTEN = (
    "Not written back: the letter was drafted by the demo model, which is only ever written to the bundled "
    "demo record. The signed PDF is saved for practice."
)


def writes_to_demo_store(settings: Settings) -> bool:
    """Whether write-back goes to the app's own demo store (not a hospital server, not a store the
    user named with CLARKE_FHIR_DB)."""
    return settings.fhir.backend != "remote" and not paths.fhir_db_is_named()


def _write_back(
    store: AppStore,
    signoff: SignOffRecord,
    document: ClinicalDocument,
    pdf_path: Path,
    settings: Settings,
    fhir: FhirClient,
    result: FinaliseResult,
) -> None:
    if document.model is not None and document.model.demo and not writes_to_demo_store(settings):
        result.warnings.append(DEMO_NOT_WRITTEN)  # practice letters never reach a real record
        return
    record = store.consultation(signoff.consultation_id)
    letter = SignedLetter(
        document=document, version=signoff.version, patient_id=record.patient_id, signed_by=signoff.signed_by,
        signed_at=signoff.signed_at, clinician=settings.clinician, encounter_ref=record.encounter_ref,
        consultation_started=record.consent_at or record.created_at,
    )  # fmt: skip
    previous = record.document_reference if signoff.kind == "addendum" else None
    try:
        written = write_back(fhir, letter, pdf_path, replaces=previous)
    except FhirError as exc:
        log.warning("write-back failed: %s", type(exc).__name__)
        result.warnings.append(f"Not written back to the record ({exc}). The signed PDF is saved.")
        return
    store.record_writeback(
        signoff.consultation_id,
        version=signoff.version,
        document_reference=written.document_reference,
        composition=written.composition,
        encounter=written.encounter,
        actor=signoff.signed_by,
    )
    result.encounter = written.encounter
    result.document_reference = written.document_reference
    result.composition = written.composition


def export_copy(
    store: AppStore, consultation_id: str, version: int, target: Path, *, actor: str | None
) -> ExportedCopy:
    """Write a readable (plaintext) copy of a signed version's stored PDF to `target`, a file the
    user chose outside Clarke's data folder, and audit it ("exported", with the destination, the
    copy's sha256 and the stored file's). The stored PDF must be the one recorded at sign-off."""
    export = store.latest_export(consultation_id, version)
    if export is None:
        raise StoreError(f"consultation {consultation_id} v{version} has no signed PDF to copy")
    target = Path(target).expanduser().absolute()
    if in_data_folder(target):
        raise StoreError(
            f"{target} is inside Clarke's data folder, where letters are kept encrypted: "
            "choose a folder outside it for a readable copy"
        )
    if not export.path.is_file() or file_sha256(export.path) != export.sha256:
        raise StoreError(
            f"the signed PDF {export.path} is missing or changed since sign-off; nothing was copied"
        )
    data = sealed.read_bytes(export.path)
    atomic_write(target, data)
    digest = hashlib.sha256(data).hexdigest()
    store.record_event(
        AuditEvent.EXPORTED, actor=actor, consultation_id=consultation_id, kind="pdf", version=version,
        readable_copy=True, destination=str(target), sha256=digest, bytes=len(data), stored_sha256=export.sha256,
    )  # fmt: skip
    return ExportedCopy(target, digest, len(data))


def recreate_signed_pdf(
    store: AppStore, consultation_id: str, version: int | None, *, settings: Settings, actor: str | None
) -> FinaliseResult:
    """Print a signed version's PDF again (lost, damaged, or never finished by a failed export):
    the letter, signer, signing time and version exactly as signed, kept in the data folder
    (sealed) and recorded as that version's export. The letterhead is today's settings'."""
    signoffs = store.signoffs(consultation_id)
    signoff = (
        signoffs[-1] if version is None and signoffs else next((s for s in signoffs if s.version == version), None)
    )
    if signoff is None:
        which = "no signed version" if version is None else f"no signed version {version}"
        raise StoreError(f"consultation {consultation_id} has {which}: only a signed letter has a PDF to re-create")
    letter = store.letter_version(consultation_id, signoff.version)
    if letter.sha256 != signoff.sha256:  # the stored text must be what was signed (immutable rows)
        raise StoreError(
            f"consultation {consultation_id} v{signoff.version} no longer matches what was signed; nothing printed"
        )
    pdf_path = render_letter_pdf(
        letter.document,
        paths.exports_dir() / letter_filename(consultation_id, signoff.version, signoff.signed_at),
        settings=settings,
        context=store.latest_context(consultation_id),
        signature=SignatureInfo(signoff.signed_by, signoff.signed_at, signoff.version, signoff.kind),
    )
    pdf_sha = store.record_export(consultation_id, pdf_path, version=signoff.version, actor=actor)
    return FinaliseResult.of(signoff, pdf_path, pdf_sha)


def in_data_folder(path: Path, *, exactly: Path | None = None) -> bool:
    """Whether `path` is inside Clarke's data folder (or, with `exactly`, is that folder)."""
    resolved = Path(path).expanduser().resolve()
    if exactly is not None:
        return resolved == Path(exactly).expanduser().resolve()
    return paths.data_dir().resolve() in (resolved, *resolved.parents)


def retry_writeback(
    store: AppStore, signoff: SignOffRecord, *, settings: Settings, fhir: FhirClient
) -> FinaliseResult:
    """Write back a signed version whose write-back failed, from its exported PDF.

    The PDF must still be the one exported at sign-off (same sha256); otherwise nothing is sent."""
    export = store.latest_export(signoff.consultation_id, signoff.version)
    if export is None:
        raise StoreError(f"consultation {signoff.consultation_id} v{signoff.version} was never exported")
    if not export.path.is_file() or file_sha256(export.path) != export.sha256:
        raise StoreError(
            f"the exported PDF {export.path} is missing or changed since sign-off; "
            "export the signed version again before writing it back"
        )
    letter = store.letter_version(signoff.consultation_id, signoff.version)
    result = FinaliseResult.of(signoff, export.path, export.sha256)
    _write_back(store, signoff, letter.document, export.path, settings, fhir, result)
    return result


def apply_retention(store: AppStore, settings: Settings) -> list[AudioRecord]:
    """Delete audio past its retention period (call at start-up and after each clinic)."""
    return store.purge_expired_audio(settings.audio.retention_days)
