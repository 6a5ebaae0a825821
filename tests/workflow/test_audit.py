"""The hash-chained audit log: `verify` names any altered or removed entry."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import workflow_samples as samples
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.store import AppStore
from clarke_desktop.store.audit import entry_hash


def _populate(store: AppStore) -> str:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    store.confirm_consent(cid, "Dr S. Chen")
    store.save_transcript(cid, samples.transcript())
    store.save_context(cid, samples.context())
    store.save_generated_letter(cid, samples.document(cid), actor="Dr S. Chen")
    store.edit_section(cid, "plan", "edited plan", actor="Dr S. Chen")
    store.resolve_discrepancy(cid, "d1", "keep_both", actor="Dr S. Chen", reason="both true")
    store.sign_off(cid, "Dr S. Chen")
    return cid


def _raw(path: Path) -> sqlite3.Connection:
    """What a tamperer with file access can do: drop the append-only triggers and write."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_append_only_u")
    conn.execute("DROP TRIGGER IF EXISTS audit_append_only_d")
    return conn


def test_intact_log_verifies(store: AppStore) -> None:
    _populate(store)
    report = store.verify_audit()
    assert report.ok, report.problems
    assert report.entries == report.head_seq == 8
    assert report.head_hash == store.audit_head()[1]


def test_append_only_triggers_refuse_changes(store: AppStore) -> None:
    _populate(store)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute("DELETE FROM audit WHERE seq = 2")


def test_altered_entry_is_named(store: AppStore) -> None:
    _populate(store)
    conn = _raw(store.db.path)
    conn.execute(
        """UPDATE audit SET data = json_set(data, '$.action', 'dismiss') WHERE event = 'discrepancy_resolved'"""
    )
    seq = conn.execute("SELECT seq FROM audit WHERE event = 'discrepancy_resolved'").fetchone()[0]
    report = store.verify_audit()
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [(seq, "altered")]
    assert f"entry {seq} (discrepancy_resolved" in report.problems[0].message


def test_rewritten_entry_with_recomputed_hash_is_named_by_the_next_link(store: AppStore) -> None:
    _populate(store)
    conn = _raw(store.db.path)
    row = conn.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
    seq, at, event, cid, _actor, data, prev, _hash = row
    forged_actor = "Dr Someone Else"
    conn.execute(
        "UPDATE audit SET actor = ?, hash = ? WHERE seq = 3",
        (forged_actor, entry_hash(seq, at, event, cid, forged_actor, data, prev)),
    )
    report = store.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "altered")]
    assert "entry 3 (" in report.problems[0].message


def test_removed_entry_is_named(store: AppStore) -> None:
    _populate(store)
    _raw(store.db.path).execute("DELETE FROM audit WHERE seq = 5")
    report = store.verify_audit()
    kinds = {(p.seq, p.kind) for p in report.problems}
    assert (5, "removed") in kinds
    assert any("entry 5 removed" in p.message for p in report.problems)


def test_removed_tail_is_caught_by_the_anchor(store: AppStore) -> None:
    _populate(store)
    _raw(store.db.path).execute("DELETE FROM audit WHERE seq >= 7")
    report = store.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(7, "removed")]
    assert "entries 7-8 removed from the end" in report.problems[0].message


def test_cli_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path))
    with AppStore() as store:
        _populate(store)
        path = store.db.path
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact: 8 entries" in ok.output
    _raw(path).execute("UPDATE audit SET at = '2020-01-01T00:00:00Z' WHERE seq = 4")
    bad = runner.invoke(cli, ["audit", "verify", "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["ok"] is False and report["problems"][0]["seq"] == 4
    shown = runner.invoke(cli, ["audit", "show"])
    assert shown.exit_code == 0 and "signed_off" in shown.output and "Thompson" not in shown.output
