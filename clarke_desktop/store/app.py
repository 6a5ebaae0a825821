"""The application store: consultations, consent, audio references, transcripts, context,
letter versions (every edit autosaved as a new version), sign-off, exports and retention.

Every change commits together with its audit entry. Letter versions and sign-offs are immutable
rows; a signed letter changes only through an addendum version.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clarke_desktop import paths
from clarke_desktop.files import file_sha256
from clarke_desktop.schemas import (
    ClinicalDocument,
    ConsultationStatus,
    Discrepancy,
    DocumentType,
    LetterEdit,
    PatientContext,
    Resolution,
    ResolutionAction,
    Transcript,
    utc_now_iso,
)
from clarke_desktop.store.audit import (
    AuditEntry,
    AuditEvent,
    AuditKey,
    AuditLog,
    VerifyReport,
    entry_from_row,
    sha256_text,
)
from clarke_desktop.store.db import Database, StoreError, from_row

log = logging.getLogger(__name__)


class ConsentRequired(StoreError):
    """Recording was asked for before the clinician confirmed the patient's consent."""


class SignedOffError(StoreError):
    """The letter is signed; changes need an addendum."""


class UnresolvedDiscrepancies(StoreError):
    def __init__(self, consultation_id: str, ids: list[str]):
        super().__init__(
            f"consultation {consultation_id} has {len(ids)} unresolved discrepancies ({', '.join(ids)}): "
            "fix, keep both or dismiss each with a reason before signing"
        )
        self.ids = ids


class NotFound(StoreError):
    pass


@dataclass(frozen=True)
class ConsultationRecord:
    id: str
    patient_id: str
    clinician: str | None
    doc_type: str
    status: ConsultationStatus
    created_at: str
    updated_at: str
    consent_at: str | None
    consent_by: str | None
    signed_at: str | None
    signed_by: str | None
    encounter_ref: str | None
    document_reference: str | None


@dataclass(frozen=True)
class DraftInputs:
    """The transcript and aside as last typed (autosaved), before or beside a letter draft."""

    transcript: str
    transcript_origin: str
    aside: str
    updated_at: str


@dataclass(frozen=True)
class LetterVersion:
    version: int
    kind: str  # generated | edit | regenerate | resolution | addendum
    author: str | None
    note: str | None
    created_at: str
    sha256: str
    signed: bool
    document: ClinicalDocument


@dataclass(frozen=True)
class SignOffRecord:
    consultation_id: str
    version: int
    kind: str  # original | addendum
    signed_by: str
    signed_at: str
    sha256: str


@dataclass(frozen=True)
class ExportRecord:
    consultation_id: str
    version: int
    kind: str
    path: Path
    sha256: str
    bytes: int


@dataclass(frozen=True)
class AudioRecord:
    id: int
    consultation_id: str
    path: str
    source: str
    sha256: str | None
    duration_s: float | None
    created_at: str
    deleted_at: str | None


def document_sha256(document: ClinicalDocument) -> str:
    return sha256_text(document.model_dump_json())


def _audit_keys(data_keys: list[bytes]) -> list[AuditKey]:
    """The audit keys of each open data key (current first), by the data key's public id."""
    from clarke_desktop.identity.accounts import key_id
    from clarke_desktop.identity.keys import subkey

    return [AuditKey(key_id(k), subkey(k, "audit-chain"), subkey(k, "audit-checkpoint")) for k in data_keys]


class AppStore:
    def __init__(self, db_path: Path | None = None) -> None:
        from clarke_desktop.identity import keyring

        self.db = Database(db_path)
        self.audit = AuditLog(
            self.db.path.with_name(self.db.path.name + ".audit-head"),
            keys=_audit_keys(keyring.data_keys(self.db.path.parent)) if self.db.encrypted else None,
        )
        self._open_audit()

    # --- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Tx]:
        """A transaction that collects audit entries and anchors the head after the commit."""
        tx = _Tx(self)
        with self.db.atomic() as conn:
            tx.conn = conn
            yield tx
        if tx.last is not None:
            try:
                self.audit.write_anchor(tx.last.seq, tx.last.hash)
            except OSError as exc:  # committed already: a full disk must not make it look undone
                log.warning("the audit anchor could not be written (%s); verify will note it", exc)

    def _open_audit(self) -> None:
        """At every open: switch a keyed store's log to the keyed chain once, and log any
        append-only trigger the database found dropped (it has already put them back)."""
        with self.db._lock:
            keying = self.audit.needs_keying(self.db.conn)
        if not keying and not self.db.restored_triggers:
            return
        with self._tx() as tx:
            if keying and self.audit.needs_keying(tx.conn):
                tx.last = self.audit.start_keyed(tx.conn)
            if self.db.restored_triggers:
                tx.event(
                    AuditEvent.AUDIT_PROTECTION_RESTORED, None, "clarke-desktop", triggers=self.db.restored_triggers
                )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AppStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- consultations --------------------------------------------------------------------

    def create_consultation(
        self,
        patient_id: str,
        *,
        clinician: str | None = None,
        doc_type: DocumentType = "clinic",
        consultation_id: str | None = None,
    ) -> ConsultationRecord:
        cid = consultation_id or f"cons-{uuid.uuid4()}"
        now = utc_now_iso()
        with self._tx() as tx:
            tx.conn.execute(
                "INSERT INTO consultations(id, patient_id, clinician, doc_type, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cid, patient_id, clinician, doc_type, ConsultationStatus.WAITING.value, now, now),
            )
            tx.event(
                AuditEvent.CONSULTATION_CREATED, cid, clinician, patient_id=patient_id, doc_type=doc_type
            )
        return self.consultation(cid)

    def consultation(self, consultation_id: str) -> ConsultationRecord:
        rows = self.db.query("SELECT * FROM consultations WHERE id = ?", (consultation_id,))
        if not rows:
            raise NotFound(f"no consultation {consultation_id} in {self.db.path}")
        return _consultation(rows[0])

    def consultations(self, statuses: list[ConsultationStatus] | None = None) -> list[ConsultationRecord]:
        if statuses:
            marks = ",".join("?" * len(statuses))
            rows = self.db.query(
                f"SELECT * FROM consultations WHERE status IN ({marks}) ORDER BY created_at",
                tuple(s.value for s in statuses),
            )
        else:
            rows = self.db.query("SELECT * FROM consultations ORDER BY created_at")
        return [_consultation(r) for r in rows]

    def set_status(self, consultation_id: str, status: ConsultationStatus) -> None:
        with self._tx() as tx:
            tx.set_status(consultation_id, status)

    # --- consent and recording ------------------------------------------------------------

    def confirm_consent(self, consultation_id: str, clinician: str, *, note: str | None = None) -> str:
        """The clinician confirms the patient agreed to be recorded. Returns the time recorded."""
        if not clinician.strip():
            raise ConsentRequired("consent must be confirmed by a named clinician")
        self.consultation(consultation_id)
        at = utc_now_iso()
        with self._tx() as tx:
            tx.conn.execute(
                "UPDATE consultations SET consent_at = ?, consent_by = ?, consent_note = ?, updated_at = ? WHERE id = ?",
                (at, clinician, note, at, consultation_id),
            )
            tx.event(AuditEvent.CONSENT_CONFIRMED, consultation_id, clinician, consent_at=at)
        return at

    def can_record(self, consultation_id: str) -> bool:
        record = self.consultation(consultation_id)
        return record.consent_at is not None and record.status != ConsultationStatus.SIGNED_OFF

    def recording_started(self, consultation_id: str, audio_path: Path, *, actor: str | None = None) -> int:
        """Call before capture begins. Refuses without consent. Returns the audio reference id."""
        record = self.consultation(consultation_id)
        if record.consent_at is None:
            raise ConsentRequired(
                f"consultation {consultation_id}: confirm the patient's consent before recording"
            )
        if record.status == ConsultationStatus.SIGNED_OFF:
            raise SignedOffError(f"consultation {consultation_id} is signed off; start a new consultation")
        with self._tx() as tx:
            audio_id = tx.add_audio(consultation_id, audio_path, "recording")
            tx.set_status(consultation_id, ConsultationStatus.RECORDING)
            tx.event(AuditEvent.RECORDING_STARTED, consultation_id, actor, audio_id=audio_id)
        return audio_id

    def recording_stopped(
        self,
        consultation_id: str,
        audio_id: int,
        *,
        duration_s: float,
        path: Path | None = None,
        actor: str | None = None,
    ) -> None:
        """The recording is finished: `path` is the file it became (the WAV replacing the raw capture)."""
        path = Path(path) if path is not None else Path(self._audio_row(audio_id)["path"])
        digest = file_sha256(path) if path.exists() else None
        with self._tx() as tx:
            tx.conn.execute(
                "UPDATE audio SET duration_s = ?, sha256 = ?, path = ? WHERE id = ?",
                (duration_s, digest, str(path), audio_id),
            )
            tx.set_status(consultation_id, ConsultationStatus.PROCESSING)
            tx.event(
                AuditEvent.RECORDING_STOPPED,
                consultation_id,
                actor,
                audio_id=audio_id,
                duration_s=round(duration_s, 3),
                sha256=digest,
            )

    def import_audio(self, consultation_id: str, path: Path, *, actor: str | None = None) -> int:
        """An audio file used instead of a live recording (the file is referenced, not copied)."""
        self.consultation(consultation_id)
        digest = file_sha256(path)
        with self._tx() as tx:
            audio_id = tx.add_audio(consultation_id, path, "import", sha256=digest)
            tx.event(AuditEvent.AUDIO_IMPORTED, consultation_id, actor, audio_id=audio_id, sha256=digest)
        return audio_id

    def audio(self, consultation_id: str) -> list[AudioRecord]:
        rows = self.db.query("SELECT * FROM audio WHERE consultation_id = ? ORDER BY id", (consultation_id,))
        return [from_row(AudioRecord, r) for r in rows]

    def _audio_row(self, audio_id: int) -> sqlite3.Row:
        rows = self.db.query("SELECT * FROM audio WHERE id = ?", (audio_id,))
        if not rows:
            raise NotFound(f"no audio reference {audio_id}")
        return rows[0]

    # --- transcript and context -----------------------------------------------------------

    def save_transcript(
        self, consultation_id: str, transcript: Transcript, *, actor: str | None = None
    ) -> int:
        payload = transcript.model_dump_json()
        digest = sha256_text(payload)
        with self._tx() as tx:
            cur = tx.conn.execute(
                "INSERT INTO transcripts(consultation_id, created_at, origin, sha256, json) VALUES (?, ?, ?, ?, ?)",
                (consultation_id, utc_now_iso(), transcript.origin, digest, payload),
            )
            tx.event(
                AuditEvent.TRANSCRIPT_PRODUCED,
                consultation_id,
                actor,
                transcript_id=cur.lastrowid,
                origin=transcript.origin,
                model=transcript.model,
                model_sha256=transcript.model_sha256,
                provider=transcript.provider,
                words=transcript.word_count,
                duration_s=transcript.duration_s,
                sha256=digest,
            )
            return int(cur.lastrowid or 0)

    def latest_transcript(self, consultation_id: str) -> Transcript | None:
        rows = self.db.query(
            "SELECT json FROM transcripts WHERE consultation_id = ? ORDER BY id DESC LIMIT 1",
            (consultation_id,),
        )
        return Transcript.model_validate_json(rows[0]["json"]) if rows else None

    def save_context(self, consultation_id: str, context: PatientContext, *, actor: str | None = None) -> int:
        payload = context.model_dump_json()
        digest = sha256_text(payload)
        with self._tx() as tx:
            cur = tx.conn.execute(
                "INSERT INTO contexts(consultation_id, created_at, sha256, json) VALUES (?, ?, ?, ?)",
                (consultation_id, utc_now_iso(), digest, payload),
            )
            tx.event(
                AuditEvent.CONTEXT_RETRIEVED,
                consultation_id,
                actor,
                context_id=cur.lastrowid,
                sha256=digest,
                fhir_resources=context_resource_versions(context),
                warnings=len(context.retrieval_warnings),
                model=context.judged_by.name if context.judged_by else None,
                model_sha256=context.judged_by.sha256 if context.judged_by else None,
                prompt_version=context.judgement_prompt_version,
            )
            return int(cur.lastrowid or 0)

    def latest_context(self, consultation_id: str) -> PatientContext | None:
        rows = self.db.query(
            "SELECT json FROM contexts WHERE consultation_id = ? ORDER BY id DESC LIMIT 1", (consultation_id,)
        )
        return PatientContext.model_validate_json(rows[0]["json"]) if rows else None

    # --- letter versions ------------------------------------------------------------------

    def save_generated_letter(
        self, consultation_id: str, document: ClinicalDocument, *, actor: str | None = None
    ) -> int:
        model = document.model
        return self._new_version(
            consultation_id, document, "generated", actor, None, AuditEvent.LETTER_GENERATED,
            status=ConsultationStatus.REVIEW,
            model=model.name if model else None,
            model_file=model.file if model else None,
            model_sha256=model.sha256 if model else None,
            demo_model=bool(model and model.demo),
            prompt_template_version=document.prompt_template_version,
            discrepancies=len(document.discrepancies),
        )  # fmt: skip

    def _new_version(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        version_kind: str,
        actor: str | None,
        note: str | None,
        event: str,  # one of the AuditEvent names
        *,
        status: ConsultationStatus | None = None,
        **data: Any,
    ) -> int:
        """A new committed letter version of an editable consultation, audited with its hash."""
        with self._tx() as tx:
            tx.require_editable(consultation_id)
            version = tx.add_version(consultation_id, document, version_kind, actor, note)
            if status is not None:
                tx.set_status(consultation_id, status)
            tx.event(event, consultation_id, actor, version=version, sha256=document_sha256(document), **data)
        return version

    def save_edit(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        *,
        actor: str | None = None,
        section_key: str | None = None,
        note: str | None = None,
    ) -> int:
        """Autosave: every call is a new committed version (durable before it returns)."""
        return self._new_version(
            consultation_id, document, "edit", actor, note, AuditEvent.LETTER_EDITED, section=section_key
        )

    def edit_section(
        self,
        consultation_id: str,
        section_key: str,
        content: str,
        *,
        actor: str | None = None,
        recheck: Callable[[ClinicalDocument], ClinicalDocument] | None = None,
    ) -> int:
        """The clinician's new text for one section, as a new version; `recheck` redoes what
        depends on the text (fact check, warnings) before it is saved."""
        _, document = self._latest_or_raise(consultation_id)
        document = _with_section(document, section_key, content, edited_by=actor)
        if recheck is not None:
            document = recheck(document)
        return self.save_edit(consultation_id, document, actor=actor, section_key=section_key)

    def save_regenerated_section(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        section_key: str,
        *,
        actor: str | None = None,
        model_sha256: str | None = None,
        prompt_template_version: str | None = None,
    ) -> int:
        return self._new_version(
            consultation_id, document, "regenerate", actor, section_key, AuditEvent.SECTION_REGENERATED,
            section=section_key, model_sha256=model_sha256, prompt_template_version=prompt_template_version,
        )  # fmt: skip

    def resolve_discrepancy(
        self,
        consultation_id: str,
        discrepancy_id: str,
        action: ResolutionAction,
        *,
        actor: str,
        reason: str | None = None,
        document: ClinicalDocument | None = None,
        edits: list[LetterEdit] | None = None,
    ) -> int:
        """Record a resolution as a new version. `document` carries the letter as the resolution
        changed it, `edits` what changed (kept so the resolution can be undone)."""
        if action == "dismiss" and not (reason and reason.strip()):
            raise StoreError(f"dismissing discrepancy {discrepancy_id} needs a reason")
        _, latest = self._latest_or_raise(consultation_id)
        base = (document or latest).model_copy(deep=True)
        target = _discrepancy(base, consultation_id, discrepancy_id)
        target.resolution = Resolution(action=action, reason=reason, by=actor, edits=edits or [])
        return self._new_version(
            consultation_id, base, "resolution", actor, discrepancy_id, AuditEvent.DISCREPANCY_RESOLVED,
            discrepancy=discrepancy_id, kind=target.kind, action=action,
            reason_sha256=sha256_text(reason) if reason else None,
            sections_changed=sorted({e.section_key for e in edits or []}),
        )  # fmt: skip

    def reopen_discrepancy(
        self, consultation_id: str, discrepancy_id: str, document: ClinicalDocument, *, actor: str
    ) -> int:
        """Undo a resolution before sign-off: `document` is the letter with its edits reversed."""
        base = document.model_copy(deep=True)
        target = _discrepancy(base, consultation_id, discrepancy_id)
        undone = target.resolution.action if target.resolution else None
        target.resolution = None
        return self._new_version(
            consultation_id, base, "resolution", actor, discrepancy_id, AuditEvent.DISCREPANCY_REOPENED,
            discrepancy=discrepancy_id, kind=target.kind, undone=undone,
        )  # fmt: skip

    def latest_letter(self, consultation_id: str) -> LetterVersion | None:
        versions = self._versions(consultation_id, latest_only=True)
        return versions[0] if versions else None

    def letter_versions(self, consultation_id: str) -> list[LetterVersion]:
        return self._versions(consultation_id, latest_only=False)

    def letter_version(self, consultation_id: str, version: int) -> LetterVersion:
        for v in self._versions(consultation_id, latest_only=False):
            if v.version == version:
                return v
        raise NotFound(f"consultation {consultation_id} has no letter version {version}")

    def _versions(self, consultation_id: str, *, latest_only: bool) -> list[LetterVersion]:
        sql = (
            "SELECT v.*, s.id IS NOT NULL AS signed FROM letter_versions v "
            "LEFT JOIN signoffs s ON s.consultation_id = v.consultation_id AND s.version = v.version "
            "WHERE v.consultation_id = ? ORDER BY v.version " + ("DESC LIMIT 1" if latest_only else "")
        )
        return [
            from_row(
                LetterVersion,
                r,
                signed=bool(r["signed"]),
                document=ClinicalDocument.model_validate_json(r["json"]),
            )
            for r in self.db.query(sql, (consultation_id,))
        ]

    def _latest_or_raise(self, consultation_id: str) -> tuple[int, ClinicalDocument]:
        latest = self.latest_letter(consultation_id)
        if latest is None:
            raise NotFound(f"consultation {consultation_id} has no letter yet")
        return latest.version, latest.document

    # --- sign-off and addenda -------------------------------------------------------------

    def signoff_kind(self, consultation_id: str) -> str:
        """What signing the latest version now would be: "original", or "addendum" after a first."""
        latest = self.latest_letter(consultation_id)
        addendum = latest is not None and latest.kind == "addendum"
        return "addendum" if addendum or self._has_signoff(consultation_id) else "original"

    def sign_off(
        self,
        consultation_id: str,
        signed_by: str,
        *,
        not_written: list[str] | None = None,
        at: str | None = None,
        version: int | None = None,
    ) -> SignOffRecord:
        """Freeze the latest version. Refused while any discrepancy is unresolved. `not_written`:
        headings of sections signed empty on purpose (recorded in the audit entry). `at` and
        `version`: the signing time and version the PDF was already printed with (refused if the
        letter changed since)."""
        if not signed_by.strip():
            raise StoreError("sign-off needs the signing clinician's name")
        latest = self.latest_letter(consultation_id)
        if latest is None:
            raise NotFound(f"consultation {consultation_id} has no letter to sign")
        if version is not None and latest.version != version:
            raise StoreError(
                f"consultation {consultation_id}: the letter changed while it was being signed "
                f"(version {version} printed, {latest.version} now); sign it again"
            )
        if latest.signed:
            raise SignedOffError(f"consultation {consultation_id} version {latest.version} is already signed")
        open_ids = [d.id for d in latest.document.discrepancies if d.resolution is None]
        if open_ids:
            raise UnresolvedDiscrepancies(consultation_id, open_ids)
        kind = self.signoff_kind(consultation_id)
        at = at or utc_now_iso()
        with self._tx() as tx:
            tx.conn.execute(
                "INSERT INTO signoffs(consultation_id, version, kind, signed_by, signed_at, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (consultation_id, latest.version, kind, signed_by, at, latest.sha256),
            )
            tx.conn.execute(
                "UPDATE consultations SET status = ?, signed_at = ?, signed_by = ?, updated_at = ? WHERE id = ?",
                (ConsultationStatus.SIGNED_OFF.value, at, signed_by, at, consultation_id),
            )
            tx.event(
                AuditEvent.SIGNED_OFF,
                consultation_id,
                signed_by,
                version=latest.version,
                kind=kind,
                sha256=latest.sha256,
                not_written=not_written or None,
            )
        return SignOffRecord(consultation_id, latest.version, kind, signed_by, at, latest.sha256)

    def signoffs(self, consultation_id: str) -> list[SignOffRecord]:
        rows = self.db.query(
            "SELECT * FROM signoffs WHERE consultation_id = ? ORDER BY version", (consultation_id,)
        )
        return [from_row(SignOffRecord, r) for r in rows]

    def _has_signoff(self, consultation_id: str) -> bool:
        return bool(
            self.db.query("SELECT 1 FROM signoffs WHERE consultation_id = ? LIMIT 1", (consultation_id,))
        )

    def start_addendum(self, consultation_id: str, *, actor: str, note: str) -> int:
        """Open a new editable version after sign-off; the signed version stays as it was."""
        latest = self.latest_letter(consultation_id)
        if latest is None or not latest.signed:
            raise StoreError(f"consultation {consultation_id} is not signed; edit the draft instead")
        if not note.strip():
            raise StoreError("an addendum needs a note saying why the signed letter changes")
        with self._tx() as tx:
            version = tx.add_version(consultation_id, latest.document, "addendum", actor, note)
            tx.set_status(consultation_id, ConsultationStatus.REVIEW)
            tx.event(
                AuditEvent.ADDENDUM_CREATED, consultation_id, actor, version=version, amends=latest.version
            )
        return version

    # --- outputs --------------------------------------------------------------------------

    def record_export(
        self, consultation_id: str, path: Path, *, version: int, actor: str | None = None, kind: str = "pdf"
    ) -> str:
        digest = file_sha256(path)
        with self._tx() as tx:
            tx.conn.execute(
                "INSERT INTO exports(consultation_id, version, kind, path, sha256, bytes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (consultation_id, version, kind, str(path), digest, path.stat().st_size, utc_now_iso()),
            )
            tx.event(
                AuditEvent.EXPORTED,
                consultation_id,
                actor,
                kind=kind,
                version=version,
                file=path.name,
                sha256=digest,
                bytes=path.stat().st_size,
            )
        return digest

    def record_writeback(
        self,
        consultation_id: str,
        *,
        version: int,
        document_reference: str,
        composition: str,
        encounter: str,
        actor: str | None = None,
    ) -> None:
        with self._tx() as tx:
            tx.conn.execute(
                "UPDATE consultations SET document_reference = ?, encounter_ref = ?, updated_at = ? WHERE id = ?",
                (document_reference, encounter, utc_now_iso(), consultation_id),
            )
            tx.conn.execute(
                "INSERT INTO writebacks(consultation_id, version, document_reference, composition, encounter, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (consultation_id, version, document_reference, composition, encounter, utc_now_iso()),
            )
            tx.event(
                AuditEvent.WRITTEN_BACK,
                consultation_id,
                actor,
                version=version,
                document_reference=document_reference,
                composition=composition,
                encounter=encounter,
            )

    def latest_export(self, consultation_id: str, version: int, kind: str = "pdf") -> ExportRecord | None:
        rows = self.db.query(
            "SELECT * FROM exports WHERE consultation_id = ? AND version = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            (consultation_id, version, kind),
        )
        return from_row(ExportRecord, rows[0], path=Path(rows[0]["path"])) if rows else None

    def pending_writebacks(self) -> list[SignOffRecord]:
        """Signed versions that never reached the FHIR store (it was down at sign-off)."""
        rows = self.db.query(
            "SELECT s.* FROM signoffs s LEFT JOIN writebacks w "
            "ON w.consultation_id = s.consultation_id AND w.version = s.version "
            "WHERE w.id IS NULL ORDER BY s.signed_at"
        )
        return [from_row(SignOffRecord, r) for r in rows]

    def record_failure(
        self, consultation_id: str, stage: str, error: str, *, actor: str | None = None
    ) -> None:
        """A pipeline failure: the error class only (messages may quote patient content)."""
        with self._tx() as tx:
            tx.event(AuditEvent.PIPELINE_FAILED, consultation_id, actor, stage=stage, error=error)

    # --- retention ------------------------------------------------------------------------

    def purge_expired_audio(self, retention_days: int, *, now: datetime | None = None) -> list[AudioRecord]:
        """Delete audio files of consultations signed more than `retention_days` ago.

        Transcripts and signed letters are kept. Each deletion is logged."""
        now = now or datetime.now(UTC)
        cutoff = (now - timedelta(days=retention_days)).isoformat(timespec="seconds").replace("+00:00", "Z")
        rows = self.db.query(
            "SELECT a.* FROM audio a JOIN consultations c ON c.id = a.consultation_id "
            "WHERE a.deleted_at IS NULL AND c.signed_at IS NOT NULL AND c.signed_at <= ? ORDER BY a.id",
            (cutoff,),
        )
        deleted: list[AudioRecord] = []
        for row in rows:
            path = Path(row["path"])
            existed = path.exists()
            # Only delete what the app recorded (its recordings folder, including WAVs recovered
            # there); an imported file elsewhere belongs to the user: we drop our reference.
            ours = row["source"] == "recording" or _inside(path, paths.recordings_dir())
            if existed and ours:
                path.unlink()
                for sidecar in path.parent.glob(path.stem + ".*"):
                    if sidecar != path and _inside(sidecar, paths.recordings_dir()):
                        sidecar.unlink(missing_ok=True)
            reason = f"retention: {retention_days} days after sign-off"
            at = utc_now_iso()
            with self._tx() as tx:
                tx.conn.execute(
                    "UPDATE audio SET deleted_at = ?, delete_reason = ? WHERE id = ?", (at, reason, row["id"])
                )
                tx.event(
                    AuditEvent.AUDIO_DELETED,
                    row["consultation_id"],
                    "retention",
                    audio_id=row["id"],
                    source=row["source"],
                    file_removed=existed and ours,
                    sha256=row["sha256"],
                    retention_days=retention_days,
                )
            deleted.append(from_row(AudioRecord, self._audio_row(row["id"])))
        return deleted

    # --- audit ----------------------------------------------------------------------------

    def record_event(self, event: str, *, actor: str | None, consultation_id: str | None = None, **data: Any) -> None:
        """An audited action outside a consultation's own steps (accounts, keys, sign-in)."""
        with self._tx() as tx:
            tx.event(event, consultation_id, actor, **data)

    def verify_audit(self, checkpoint: dict[str, Any] | None = None) -> VerifyReport:
        """Check the chain, its anchor and, given one, a checkpoint exported earlier."""
        with self.db._lock:
            return self.audit.verify(self.db.conn, checkpoint)

    def audit_checkpoint(self) -> dict[str, Any]:
        """The log's head signed with the installation's key (audit its export once it is written)."""
        with self.db._lock:
            return self.audit.checkpoint(self.db.conn)

    def audit_head(self) -> tuple[int, str]:
        with self.db._lock:
            return self.audit.head(self.db.conn)

    def audit_entries_of(self, event: str, *, limit: int) -> list[AuditEntry]:
        """The last `limit` entries of one event, oldest first."""
        with self.db._lock:
            rows = self.db.conn.execute(
                "SELECT * FROM audit WHERE event = ? ORDER BY seq DESC LIMIT ?", (event, limit)
            ).fetchall()
        return [entry_from_row(r) for r in reversed(rows)]

    def audit_entries(self, consultation_id: str | None = None) -> list[AuditEntry]:
        with self.db._lock:
            return self.audit.entries(self.db.conn, consultation_id)

    # --- recovery -------------------------------------------------------------------------

    # --- drafts in progress ---------------------------------------------------------------

    def save_inputs(
        self, consultation_id: str, *, transcript: str, aside: str, transcript_origin: str = "typed"
    ) -> None:
        """Autosave what the clinician has typed (not audited: no letter, nothing signed yet)."""
        with self.db.atomic() as conn:
            conn.execute(
                "INSERT INTO draft_inputs (consultation_id, transcript, transcript_origin, aside, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(consultation_id) DO UPDATE SET transcript = excluded.transcript, "
                "transcript_origin = excluded.transcript_origin, aside = excluded.aside, "
                "updated_at = excluded.updated_at",
                (consultation_id, transcript, transcript_origin, aside, utc_now_iso()),
            )

    def inputs(self, consultation_id: str) -> DraftInputs | None:
        rows = self.db.query("SELECT * FROM draft_inputs WHERE consultation_id = ?", (consultation_id,))
        return from_row(DraftInputs, rows[0]) if rows else None

    def unfinished(self) -> list[ConsultationRecord]:
        """Consultations not signed off with something to come back to (a letter draft or typed
        inputs), most recently touched first."""
        rows = self.db.query(
            "SELECT c.* FROM consultations c WHERE c.status != ? AND ("
            " EXISTS (SELECT 1 FROM letter_versions v WHERE v.consultation_id = c.id)"
            " OR EXISTS (SELECT 1 FROM draft_inputs d WHERE d.consultation_id = c.id"
            "  AND (trim(d.transcript, char(32, 9, 10, 13)) != '' OR trim(d.aside, char(32, 9, 10, 13)) != ''))"
            ") ORDER BY c.updated_at DESC",
            (ConsultationStatus.SIGNED_OFF.value,),
        )
        return [_consultation(r) for r in rows]

    def interrupted(self) -> list[ConsultationRecord]:
        """Consultations left mid-way (recording, processing, or an unsigned draft)."""
        return self.consultations(
            [
                ConsultationStatus.RECORDING,
                ConsultationStatus.PAUSED,
                ConsultationStatus.PROCESSING,
                ConsultationStatus.REVIEW,
            ]
        )

    def mark_recovered(self, consultation_id: str, *, actor: str | None = None) -> ConsultationStatus:
        """Settle an interrupted consultation: a draft -> review; otherwise back to waiting."""
        latest = self.latest_letter(consultation_id)
        status = ConsultationStatus.REVIEW if latest else ConsultationStatus.WAITING
        with self._tx() as tx:
            tx.set_status(consultation_id, status)
            tx.event(
                AuditEvent.DRAFT_RECOVERED,
                consultation_id,
                actor,
                version=latest.version if latest else None,
                status=status.value,
            )
        return status


class _Tx:
    def __init__(self, store: AppStore) -> None:
        self.store = store
        self.conn: sqlite3.Connection
        self.last: AuditEntry | None = None

    def event(self, event: str, consultation_id: str | None, actor: str | None, **data: Any) -> None:
        self.last = self.store.audit.append(
            self.conn, event, consultation_id=consultation_id, actor=actor, **data
        )

    def set_status(self, consultation_id: str, status: ConsultationStatus) -> None:
        cur = self.conn.execute(
            "UPDATE consultations SET status = ?, updated_at = ? WHERE id = ?",
            (status.value, utc_now_iso(), consultation_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no consultation {consultation_id}")

    def add_audio(self, consultation_id: str, path: Path, source: str, sha256: str | None = None) -> int:
        cur = self.conn.execute(
            "INSERT INTO audio(consultation_id, path, source, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
            (consultation_id, str(path), source, sha256, utc_now_iso()),
        )
        return int(cur.lastrowid or 0)

    def require_editable(self, consultation_id: str) -> None:
        row = self.conn.execute(
            "SELECT v.version, s.id AS signoff FROM letter_versions v LEFT JOIN signoffs s "
            "ON s.consultation_id = v.consultation_id AND s.version = v.version "
            "WHERE v.consultation_id = ? ORDER BY v.version DESC LIMIT 1",
            (consultation_id,),
        ).fetchone()
        if row is not None and row["signoff"] is not None:
            raise SignedOffError(
                f"consultation {consultation_id} version {row['version']} is signed off; "
                "start an addendum to change it"
            )

    def add_version(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        kind: str,
        author: str | None,
        note: str | None,
    ) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM letter_versions WHERE consultation_id = ?",
            (consultation_id,),
        ).fetchone()
        version = int(row[0])
        payload = document.model_dump_json()
        self.conn.execute(
            "INSERT INTO letter_versions(consultation_id, version, kind, author, note, created_at, sha256, json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (consultation_id, version, kind, author, note, utc_now_iso(), sha256_text(payload), payload),
        )
        self.conn.execute(
            "UPDATE consultations SET updated_at = ? WHERE id = ?", (utc_now_iso(), consultation_id)
        )
        return version


def context_resource_versions(context: PatientContext) -> list[str]:
    """Every FHIR resource (with version) the context cites: "Type/id/_history/v"."""
    refs: set[str] = set()

    def add(src: Any) -> None:
        if src is None:
            return
        ref = f"{src.resource_type}/{src.id}"
        refs.add(f"{ref}/_history/{src.version_id}" if src.version_id else ref)

    add(context.demographics.source)
    add(context.last_letter_source)
    # Every list of facts (problems, medications, labs, vital signs, ...): new lists count too.
    for name in type(context).model_fields:
        value = getattr(context, name)
        if isinstance(value, list):
            for item in value:
                add(getattr(item, "source", None))
                add(getattr(item, "previous_source", None))
    return sorted(refs)


def _discrepancy(document: ClinicalDocument, consultation_id: str, discrepancy_id: str) -> Discrepancy:
    found = next((d for d in document.discrepancies if d.id == discrepancy_id), None)
    if found is None:
        raise NotFound(f"consultation {consultation_id} has no discrepancy {discrepancy_id}")
    return found


def _with_section(
    document: ClinicalDocument, section_key: str, content: str, *, edited_by: str | None = None
) -> ClinicalDocument:
    document = document.model_copy(deep=True)
    for section in document.sections:
        if section.key == section_key:
            if not section.editable:
                raise StoreError(f"section {section_key} is not editable")
            section.content = content
            section.edited_by = edited_by or "the clinician"  # provenance: no longer the model's text
            return document
    raise NotFound(f"the letter has no section {section_key}")


def _consultation(row: sqlite3.Row) -> ConsultationRecord:
    return from_row(ConsultationRecord, row, status=ConsultationStatus(row["status"]))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
