"""Attacks on the audit trail, each tried as someone with a local account would (issue #16).

Someone who can write the database file (and, for the insider cases, even holds the
installation's key) edits the log; `audit verify` must name what was done. The store is the
product's own: SQLCipher, keyed by a real sign-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import accounts
import pytest
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.identity import keyring
from clarke_desktop.store import AppStore
from clarke_desktop.store.app import _audit_keys
from clarke_desktop.store.audit import AuditLog, entry_hash
from clarke_desktop.store.db import PROTECTIVE_TRIGGERS, _row_factory
from local_fhir import cipher


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(folder))
    accounts.set_up(folder)
    accounts.sign_in_env(monkeypatch, tmp_path)
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.confirm_consent(cid, "Dr S. Chen")
        store.save_inputs(cid, transcript="Patient: the cough is better.", aside="")
        store.record_event("session_locked", actor="s.chen", reason="idle")
    yield folder
    keyring.forget(folder)


def _db(folder: Path) -> Path:
    return folder / "clarke.sqlite3"


def _raw(folder: Path) -> Any:
    """The attacker's connection: the database key in hand, the append-only triggers dropped."""
    key = keyring.key_for(_db(folder), "app-db")
    conn = cipher.connect(_db(folder), key, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_append_only_u")
    conn.execute("DROP TRIGGER IF EXISTS audit_append_only_d")
    return conn


def _close(conn: Any) -> None:
    """A careful attacker puts the triggers back before leaving."""
    for sql in PROTECTIVE_TRIGGERS.values():
        conn.execute(sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
    conn.close()


def _rechain(conn: Any, key: bytes | None) -> tuple[int, str]:
    """Recompute every entry's hash and link (plain SHA-256 when `key` is None); the new head."""
    prev, seq = "0" * 64, 0
    for row in conn.execute(
        "SELECT seq, at, event, consultation_id, actor, data FROM audit ORDER BY seq"
    ).fetchall():
        seq = row[0]
        digest = entry_hash(row[0], row[1], row[2], row[3], row[4], row[5], prev, key)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    return seq, prev


def _verify(folder: Path, checkpoint: dict[str, Any] | None = None) -> Any:
    with AppStore() as store:
        return store.verify_audit(checkpoint)


def _kinds(report: Any) -> set[str]:
    return {p.kind for p in report.problems}


def test_the_untouched_log_verifies_as_a_keyed_chain(data: Path) -> None:
    report = _verify(data)
    assert report.ok and report.keyed, report.problems
    entries = [e.event for e in AppStore().audit_entries()]
    assert entries[0] == "audit_keyed"


def test_an_actor_changed_and_the_chain_recomputed_with_sha256_and_the_anchor_rewritten_is_caught(
    data: Path,
) -> None:
    conn = _raw(data)
    conn.execute("UPDATE audit SET actor = 'someone else' WHERE event = 'session_locked'")
    seq, head = _rechain(conn, None)
    (data / "clarke.sqlite3.audit-head").write_text(json.dumps({"seq": seq, "hash": head}))
    _close(conn)
    report = _verify(data)
    assert not report.ok and "altered" in _kinds(report)


def test_the_keyed_marker_removed_and_the_whole_log_made_plain_is_caught(data: Path) -> None:
    """Without the key, the plain rewrite is named at once; the store then re-keys at its next
    open (as it does for a log begun before accounts), which a checkpoint exposes."""
    with AppStore() as store:
        checkpoint = store.audit_checkpoint()
    conn = _raw(data)
    conn.execute("DELETE FROM audit WHERE event = 'audit_keyed'")
    for (seq,) in conn.execute("SELECT seq FROM audit ORDER BY seq").fetchall():
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
    seq, head = _rechain(conn, None)
    (data / "clarke.sqlite3.audit-head").write_text(json.dumps({"seq": seq, "hash": head}))
    _close(conn)
    conn = cipher.connect(_db(data), keyring.key_for(_db(data), "app-db"))
    conn.row_factory = _row_factory(conn)
    keys = _audit_keys(keyring.data_keys(data))
    log = AuditLog(data / "clarke.sqlite3.audit-head", keys=keys)
    report = log.verify(conn)  # what `audit verify` would say before the store is opened again
    conn.close()
    assert not report.ok and "unkeyed" in _kinds(report)
    later = _verify(data, checkpoint)
    assert not later.ok and {"altered"} & _kinds(later)


def test_dropped_triggers_are_put_back_at_the_next_start_and_the_log_says_so(data: Path) -> None:
    _raw(data).close()  # dropped and left dropped
    with AppStore() as store:
        triggers = {
            r[0] for r in store.db.conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        }
        assert {"audit_append_only_u", "audit_append_only_d"} <= triggers
        with pytest.raises(cipher.DatabaseErrors, match="append-only"):
            store.db.conn.execute("DELETE FROM audit WHERE seq = 1")
        restored = [e for e in store.audit_entries() if e.event == "audit_protection_restored"]
        assert restored and set(restored[0].data["triggers"]) == {
            "audit_append_only_u",
            "audit_append_only_d",
        }
        report = store.verify_audit()
    assert "unprotected" in _kinds(report)


def test_a_deleted_anchor_is_a_problem_not_a_note(data: Path) -> None:
    (data / "clarke.sqlite3.audit-head").unlink()
    report = _verify(data)
    assert not report.ok and "unanchored" in _kinds(report)


def test_an_insider_with_the_key_who_rewrites_everything_is_caught_by_a_checkpoint(data: Path) -> None:
    with AppStore() as store:
        checkpoint = store.audit_checkpoint()
    assert _verify(data, checkpoint).ok
    conn = _raw(data)
    conn.execute("UPDATE audit SET actor = 'someone else' WHERE event = 'session_locked'")
    seq, head = _rechain(conn, keyring.key_for(_db(data), "audit-chain"))  # the insider holds the key
    (data / "clarke.sqlite3.audit-head").write_text(json.dumps({"seq": seq, "hash": head}))
    _close(conn)
    assert _verify(data).ok  # undetectable without an outside reference...
    report = _verify(data, checkpoint)
    assert not report.ok and "altered" in _kinds(report) and report.checkpoint["ok"] is False


def test_entries_cut_from_the_end_with_the_anchor_wound_back_are_caught_by_a_checkpoint(data: Path) -> None:
    with AppStore() as store:
        store.record_event("session_locked", actor="s.chen", reason="idle")
        checkpoint = store.audit_checkpoint()
    conn = _raw(data)
    last = checkpoint["seq"]
    conn.execute("DELETE FROM audit WHERE seq = ?", (last,))
    seq, digest = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    (data / "clarke.sqlite3.audit-head").write_text(json.dumps({"seq": seq, "hash": digest}))
    _close(conn)
    assert _verify(data).ok
    report = _verify(data, checkpoint)
    assert "removed" in _kinds(report)


def test_an_edited_or_foreign_checkpoint_is_refused(data: Path, tmp_path: Path) -> None:
    with AppStore() as store:
        checkpoint = store.audit_checkpoint()
    edited = {**checkpoint, "seq": checkpoint["seq"] - 1}
    assert "checkpoint" in _kinds(_verify(data, edited))
    other = tmp_path / "other"
    keyring.remember(other, b"\x05" * 32)
    try:
        with AppStore(other / "clarke.sqlite3") as store:
            foreign = store.audit_checkpoint()
    finally:
        keyring.forget(other)
    report = _verify(data, foreign)
    assert "checkpoint" in _kinds(report)
    assert any("not made by this installation" in p.message for p in report.problems)


def test_the_checkpoint_commands(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "offsite" / "checkpoint.json"
    made = CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert "Checkpoint of entry" in made.output and out.exists()
    saved = json.loads(out.read_text())
    assert set(saved) == {"format", "seq", "hash", "made_at", "public_key", "signature"}
    ok = CliRunner().invoke(cli, ["audit", "verify", "--json", "--checkpoint", str(out)])
    assert ok.exit_code == 0, ok.output
    result = json.loads(ok.output)
    assert result["ok"] and result["keyed"] and result["checkpoint"]["ok"] is True
    assert result["checkpoint"]["seq"] == saved["seq"]
    events = [e.event for e in AppStore().audit_entries()]
    assert "audit_checkpoint" in events[-3:]  # then the verify command's own sign-in
    conn = _raw(data)
    conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 2")
    _close(conn)
    bad = CliRunner().invoke(cli, ["audit", "verify", "--json", "--checkpoint", str(out)])
    assert bad.exit_code == 1 and not json.loads(bad.output)["ok"]
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    refused = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(garbage)])
    assert refused.exit_code == 2 and "not an audit checkpoint" in refused.output
