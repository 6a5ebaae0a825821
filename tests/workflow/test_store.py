"""Application store: consent, versions, sign-off immutability, retention, privacy of the file."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import workflow_samples as samples

from clarke_desktop.schemas import ConsultationStatus
from clarke_desktop.store import (
    AppStore,
    AuditEvent,
    ConsentRequired,
    SignedOffError,
    StoreError,
    UnresolvedDiscrepancies,
)


def _with_letter(store: AppStore, *, discrepancy: bool = True) -> str:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    store.save_transcript(cid, samples.transcript())
    store.save_context(cid, samples.context())
    store.save_generated_letter(cid, samples.document(cid, discrepancy=discrepancy), actor="Dr S. Chen")
    return cid


def test_database_and_sidecars_are_private_and_versioned(store: AppStore) -> None:
    _with_letter(store)
    assert store.db.schema_version == 4
    for path in store.db.path.parent.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name} is {oct(mode)}"


def test_newer_schema_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "clarke.sqlite3"
    AppStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match=str(path)):
        AppStore(path)


def test_recording_needs_consent_recorded_with_time_and_clinician(store: AppStore, tmp_path: Path) -> None:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    assert not store.can_record(cid)
    with pytest.raises(ConsentRequired):
        store.recording_started(cid, tmp_path / "a.raw")
    with pytest.raises(ConsentRequired):
        store.confirm_consent(cid, "  ")
    at = store.confirm_consent(cid, "Dr S. Chen")
    record = store.consultation(cid)
    assert (record.consent_at, record.consent_by) == (at, "Dr S. Chen")
    assert store.can_record(cid)
    audio_id = store.recording_started(cid, tmp_path / "a.raw", actor="Dr S. Chen")
    (tmp_path / "a.raw").write_bytes(b"\0" * 3200)
    store.recording_stopped(cid, audio_id, duration_s=0.1)
    events = [e.event for e in store.audit_entries(cid)]
    assert events == [
        AuditEvent.CONSULTATION_CREATED,
        AuditEvent.CONSENT_CONFIRMED,
        AuditEvent.RECORDING_STARTED,
        AuditEvent.RECORDING_STOPPED,
    ]
    consent = store.audit_entries(cid)[1]
    assert consent.actor == "Dr S. Chen" and consent.data["consent_at"] == at
    assert store.audio(cid)[0].sha256 is not None


def test_every_edit_is_a_new_version_and_the_audit_holds_no_letter_text(store: AppStore) -> None:
    cid = _with_letter(store)
    for i in range(3):
        store.edit_section(cid, "plan", f"Plan revision {i}: gliclazide 40 mg", actor="Dr S. Chen")
    versions = store.letter_versions(cid)
    assert [v.kind for v in versions] == ["generated", "edit", "edit", "edit"]
    assert [v.document.sections[2].content for v in versions[1:]] == [
        f"Plan revision {i}: gliclazide 40 mg" for i in range(3)
    ]
    audit_dump = repr([e.data for e in store.audit_entries()])
    for secret in ("Plan revision", "gliclazide", "Thompson", samples.TRANSCRIPT_TEXT[:30]):
        assert secret not in audit_dump
    generated = next(e for e in store.audit_entries(cid) if e.event == AuditEvent.LETTER_GENERATED)
    assert generated.data["model_sha256"] == "ab" * 32
    assert generated.data["prompt_template_version"] == "letter-v1"
    context_event = next(e for e in store.audit_entries(cid) if e.event == AuditEvent.CONTEXT_RETRIEVED)
    assert "Observation/obs-hba1c-2/_history/1" in context_event.data["fhir_resources"]


def test_sign_off_needs_every_discrepancy_resolved(store: AppStore) -> None:
    cid = _with_letter(store)
    with pytest.raises(UnresolvedDiscrepancies, match="d1"):
        store.sign_off(cid, "Dr S. Chen")
    with pytest.raises(StoreError, match="reason"):
        store.resolve_discrepancy(cid, "d1", "dismiss", actor="Dr S. Chen")
    store.resolve_discrepancy(
        cid, "d1", "dismiss", actor="Dr S. Chen", reason="lab result from another trust"
    )
    record = store.sign_off(cid, "Dr S. Chen")
    assert record.kind == "original"
    assert store.consultation(cid).status == ConsultationStatus.SIGNED_OFF
    resolution = store.latest_letter(cid).document.discrepancies[0].resolution
    assert resolution.action == "dismiss" and resolution.by == "Dr S. Chen"


def test_signed_version_is_frozen_and_changes_need_an_addendum(store: AppStore) -> None:
    cid = _with_letter(store, discrepancy=False)
    signed = store.sign_off(cid, "Dr S. Chen")
    frozen = store.letter_version(cid, signed.version)
    with pytest.raises(SignedOffError, match="addendum"):
        store.edit_section(cid, "plan", "changed after signing")
    with pytest.raises(SignedOffError):
        store.sign_off(cid, "Dr S. Chen")
    # Not even a direct write to the database changes a stored version.
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        store.db.conn.execute("UPDATE letter_versions SET json = '{}' WHERE version = ?", (signed.version,))
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        store.db.conn.execute("DELETE FROM signoffs")

    with pytest.raises(StoreError, match="note"):
        store.start_addendum(cid, actor="Dr S. Chen", note=" ")
    addendum = store.start_addendum(cid, actor="Dr S. Chen", note="HbA1c date corrected")
    store.edit_section(cid, "plan", "Start gliclazide 40 mg once daily. Addendum: HbA1c repeat in 12 weeks.")
    second = store.sign_off(cid, "Dr S. Chen")
    assert second.kind == "addendum" and second.version == addendum + 1
    assert store.letter_version(cid, signed.version).document == frozen.document
    assert store.letter_version(cid, signed.version).sha256 == signed.sha256
    assert [s.version for s in store.signoffs(cid)] == [signed.version, second.version]
    assert store.verify_audit().ok


def test_retention_deletes_audio_after_n_days_and_keeps_transcript_and_letter(
    store: AppStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path))
    cid = store.create_consultation("pt-001").id
    store.confirm_consent(cid, "Dr S. Chen")
    wav = recordings / "rec-1.wav"
    wav.write_bytes(b"RIFF" + os.urandom(100))
    sidecar = recordings / "rec-1.json"
    sidecar.write_text("{}")
    audio_id = store.recording_started(cid, wav)
    store.recording_stopped(cid, audio_id, duration_s=3.0)
    recovered = recordings / "rec-0.wav"  # a crash-recovered recording, registered as an import
    recovered.write_bytes(b"RIFF" + os.urandom(80))
    store.import_audio(cid, recovered)
    imported = tmp_path / "imported.wav"
    imported.write_bytes(b"RIFF" + os.urandom(50))
    store.import_audio(cid, imported)
    store.save_transcript(cid, samples.transcript())
    store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
    store.sign_off(cid, "Dr S. Chen")

    assert store.purge_expired_audio(28) == []  # signed just now: kept
    assert wav.exists()
    later = datetime.now(UTC) + timedelta(days=28, minutes=1)
    deleted = store.purge_expired_audio(28, now=later)
    assert {d.id for d in deleted} == {a.id for a in store.audio(cid)}
    assert not wav.exists() and not sidecar.exists() and not recovered.exists()
    assert imported.exists()  # the user's own file: only our reference is dropped
    assert all(a.deleted_at for a in store.audio(cid))
    assert store.latest_transcript(cid) is not None and store.latest_letter(cid).signed
    deletions = [e for e in store.audit_entries(cid) if e.event == AuditEvent.AUDIO_DELETED]
    assert len(deletions) == 3 and deletions[0].data["retention_days"] == 28
    assert store.purge_expired_audio(28, now=later) == []  # idempotent


def test_version_1_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    from clarke_desktop.store.db import MIGRATIONS

    path = tmp_path / "clarke.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version=1; COMMIT;")
    conn.execute(
        "INSERT INTO consultations(id, patient_id, status, created_at, updated_at) "
        "VALUES ('cons-old', 'pt-001', 'review', '2026-01-01T09:00:00Z', '2026-01-01T09:00:00Z')"
    )
    conn.close()
    with AppStore(path) as store:
        assert store.db.schema_version == len(MIGRATIONS) == 4
        assert store.consultation("cons-old").status == ConsultationStatus.REVIEW
        assert store.pending_writebacks() == []
        assert store.inputs("cons-old") is None  # v3: no typed inputs yet, and room for them
        store.save_inputs("cons-old", transcript="typed after the upgrade", aside="")
        assert [r.id for r in store.unfinished()] == ["cons-old"]


def test_a_corrupt_database_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "clarke.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=f"cannot open the application database {path}"):
        AppStore(path)


def test_the_audit_log_is_looked_up_by_event_through_an_index(store: AppStore) -> None:
    """Every open asks for the last key span's start: with the index it never reads the whole log."""
    plan = store.db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM audit WHERE event IN ('audit_keyed', 'audit_rekeyed') "
        "ORDER BY seq DESC LIMIT 1"
    ).fetchall()
    assert any("audit_event" in str(tuple(row)) for row in plan), plan
