"""Hash-chained audit log of every consequential event.

Each entry's hash covers its own fields and the previous entry's hash, so changing or removing
any entry breaks the chain at a place `verify` can name. Removing entries from the end leaves a
valid shorter chain, so the head (seq + hash) is also anchored in a file beside the database.

Entries hold ids, versions and hashes, never patient content (no transcript or letter text).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clarke_desktop.files import atomic_write
from clarke_desktop.schemas import utc_now_iso
from clarke_desktop.store.db import from_row

GENESIS = "0" * 64
_ANCHOR_LOCK = threading.Lock()


class AuditEvent:
    """Event names (strings in the log; listed here so callers and tests agree)."""

    CONSULTATION_CREATED = "consultation_created"
    CONSENT_CONFIRMED = "consent_confirmed"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    AUDIO_IMPORTED = "audio_imported"
    AUDIO_DELETED = "audio_deleted"
    TRANSCRIPT_PRODUCED = "transcript_produced"
    CONTEXT_RETRIEVED = "context_retrieved"
    LETTER_GENERATED = "letter_generated"
    LETTER_EDITED = "letter_edited"
    SECTION_REGENERATED = "section_regenerated"
    DISCREPANCY_RESOLVED = "discrepancy_resolved"
    DISCREPANCY_REOPENED = "discrepancy_reopened"  # a resolution undone before sign-off
    SIGNED_OFF = "signed_off"
    ADDENDUM_CREATED = "addendum_created"
    EXPORTED = "exported"
    WRITTEN_BACK = "written_back"
    PIPELINE_FAILED = "pipeline_failed"
    DRAFT_RECOVERED = "draft_recovered"
    # Accounts and keys (actor: the account that acted; data names the account acted on).
    SET_UP = "set_up"  # first start: the first admin account and the recovery key created
    ACCOUNT_ADDED = "account_added"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ACCOUNT_UNLOCKED = "account_unlocked"
    PASSWORD_RESET = "password_reset"
    SIGNED_IN = "signed_in"
    SESSION_LOCKED = "session_locked"
    REAUTHENTICATED = "reauthenticated"  # the password asked again (sign-off, approvals, unlock)
    KEYS_ROTATED = "keys_rotated"
    KEYS_RECOVERED = "keys_recovered"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(
    seq: int, at: str, event: str, consultation_id: str | None, actor: str | None, data: str, prev: str
) -> str:
    canonical = json.dumps(
        [seq, at, event, consultation_id, actor, data, prev], ensure_ascii=False, separators=(",", ":")
    )
    return sha256_text(canonical)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    event: str
    consultation_id: str | None
    actor: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def describe(self) -> str:
        who = f", consultation {self.consultation_id}" if self.consultation_id else ""
        return f"entry {self.seq} ({self.event}{who}, at {self.at})"


@dataclass
class AuditProblem:
    seq: int
    kind: str  # altered | removed | unanchored
    message: str


@dataclass
class VerifyReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _row_entry(row: sqlite3.Row) -> AuditEntry:
    try:
        data = json.loads(row["data"])
    except json.JSONDecodeError:
        data = {"_unparseable": row["data"]}
    return from_row(AuditEntry, row, data=data)


class AuditLog:
    """Appends inside the caller's transaction, so an event and the change it records commit together."""

    def __init__(self, anchor_path: Path) -> None:
        self.anchor_path = anchor_path

    def append(
        self,
        conn: sqlite3.Connection,
        event: str,
        *,
        consultation_id: str | None = None,
        actor: str | None = None,
        **data: Any,
    ) -> AuditEntry:
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
        at = utc_now_iso()
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        digest = entry_hash(seq, at, event, consultation_id, actor, payload, prev)
        conn.execute(
            "INSERT INTO audit(seq, at, event, consultation_id, actor, data, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, at, event, consultation_id, actor, payload, prev, digest),
        )
        return AuditEntry(seq, at, event, consultation_id, actor, data, prev, digest)

    def write_anchor(self, seq: int, digest: str) -> None:
        """Record the head outside the database (after the commit); atomic replace, fsync'd.

        Never moves backwards: two stores on one database (GUI and pipeline) may finish their
        commits in one order and their anchor writes in the other."""
        with _ANCHOR_LOCK:
            current = self.read_anchor()
            if current and isinstance(current.get("seq"), int) and current["seq"] >= seq:
                return
            self._replace_anchor(seq, digest)

    def _replace_anchor(self, seq: int, digest: str) -> None:
        atomic_write(self.anchor_path, json.dumps({"seq": seq, "hash": digest}))

    def read_anchor(self) -> dict[str, Any] | None:
        try:
            anchor: dict[str, Any] = json.loads(self.anchor_path.read_text(encoding="utf-8"))
            return anchor
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return {"seq": None, "hash": None}

    def entries(self, conn: sqlite3.Connection, consultation_id: str | None = None) -> list[AuditEntry]:
        if consultation_id:
            rows = conn.execute(
                "SELECT * FROM audit WHERE consultation_id = ? ORDER BY seq", (consultation_id,)
            ).fetchall()
        else:
            rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [_row_entry(r) for r in rows]

    def head(self, conn: sqlite3.Connection) -> tuple[int, str]:
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (last["seq"], last["hash"]) if last else (0, GENESIS)

    def verify(self, conn: sqlite3.Connection) -> VerifyReport:
        rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        problems: list[AuditProblem] = []
        notes: list[str] = []
        expected_seq, prev_hash = 1, GENESIS
        prev_entry: AuditEntry | None = None
        for row in rows:
            entry = _row_entry(row)
            if entry.seq != expected_seq:
                missing = (
                    f"entry {expected_seq}"
                    if entry.seq == expected_seq + 1
                    else f"entries {expected_seq}-{entry.seq - 1}"
                )
                problems.append(
                    AuditProblem(
                        expected_seq, "removed", f"{missing} removed (the log jumps to entry {entry.seq})"
                    )
                )
            recomputed = entry_hash(
                entry.seq,
                entry.at,
                entry.event,
                entry.consultation_id,
                entry.actor,
                row["data"],
                entry.prev_hash,
            )
            if recomputed != entry.hash:
                problems.append(
                    AuditProblem(
                        entry.seq,
                        "altered",
                        f"{entry.describe()} was altered: its content no longer matches its hash",
                    )
                )
            elif entry.prev_hash != prev_hash and entry.seq == expected_seq:
                # The entry is self-consistent but does not follow the one before it: the previous
                # entry was rewritten (with a recomputed hash) or replaced.
                target = prev_entry.describe() if prev_entry else "the log's start"
                problems.append(
                    AuditProblem(
                        entry.seq - 1,
                        "altered",
                        f"{target} was altered or replaced: entry {entry.seq} was chained to a different entry",
                    )
                )
            expected_seq, prev_hash, prev_entry = entry.seq + 1, entry.hash, entry
        head_seq = prev_entry.seq if prev_entry else 0
        head_hash = prev_entry.hash if prev_entry else GENESIS
        anchor = self.read_anchor()
        if anchor is None:
            if rows:
                notes.append(f"no head anchor file at {self.anchor_path}; tail removal cannot be checked")
        elif anchor.get("seq") is None:
            problems.append(
                AuditProblem(head_seq, "unanchored", f"head anchor file {self.anchor_path} is unreadable")
            )
        elif anchor["seq"] > head_seq:
            problems.append(
                AuditProblem(
                    head_seq + 1,
                    "removed",
                    f"entries {head_seq + 1}-{anchor['seq']} removed from the end of the log "
                    f"(the anchor records entry {anchor['seq']})",
                )
            )
        else:
            anchored = next((r for r in rows if r["seq"] == anchor["seq"]), None)
            if anchored is not None and anchored["hash"] != anchor["hash"]:
                problems.append(
                    AuditProblem(
                        anchor["seq"],
                        "altered",
                        f"entry {anchor['seq']} differs from the anchored head (the log was rewritten)",
                    )
                )
            if anchor["seq"] < head_seq:
                # A crash between the commit and the anchor write leaves the anchor one step behind.
                notes.append(
                    f"anchor is at entry {anchor['seq']}, log head at {head_seq} (interrupted write)"
                )
        return VerifyReport(len(rows), head_seq, head_hash, problems, notes)
