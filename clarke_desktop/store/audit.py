"""Keyed, hash-chained audit log of every consequential event.

Each entry's hash covers its own fields and the previous entry's hash, so changing or removing
any entry breaks the chain at a place `verify` can name. In an installation with accounts the
hash is an HMAC-SHA256 keyed by a subkey of the data key, which only a signed-in application
holds: someone who can write the database file cannot recompute the chain after an edit. The
switch from plain SHA-256 (a log begun before accounts) is itself a keyed entry (`audit_keyed`)
chained to the last plain one, so the older part cannot be rewritten either; a keyed store whose
log has no such entry was rewritten without the key.

Removing entries from the end leaves a valid shorter chain, so the head (seq + hash) is also
anchored in a file beside the database. Against someone who holds the key (an insider who can sign
in and run code), `checkpoint` exports the head signed with the installation's ed25519 key for
storage off the machine; `verify` with that checkpoint proves nothing up to it was changed or
removed since.

Entries hold ids, versions and hashes, never patient content (no transcript or letter text).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clarke_desktop.files import atomic_write
from clarke_desktop.schemas import utc_now_iso
from clarke_desktop.store.db import from_row

GENESIS = "0" * 64
KEYED_SCHEME = "hmac-sha256"
CHECKPOINT_FORMAT = "clarke-audit-checkpoint/1"
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
    FILE_SEALED = "file_sealed"  # a recording or PDF from before accounts sealed in place
    WRITTEN_BACK = "written_back"
    PIPELINE_FAILED = "pipeline_failed"
    RECORD_OPENED = "record_opened"  # a patient's record shown or read for a consultation
    SETTINGS_CHANGED = "settings_changed"
    SETTINGS_REFUSED = "settings_refused"  # servers found in settings.json that Clarke did not set
    FHIR_WRITTEN = "fhir_written"  # a write to the FHIR store outside a sign-off (CLI, REST, import)
    # The log itself.
    AUDIT_KEYED = "audit_keyed"  # from here on every entry is an HMAC under the installation's key
    AUDIT_REKEYED = "audit_rekeyed"  # a key rotation: from here on, HMACs under the new data key's
    AUDIT_PROTECTION_RESTORED = "audit_protection_restored"  # append-only triggers found dropped
    AUDIT_CHECKPOINT = "audit_checkpoint"  # a signed head exported for storage off the machine
    DRAFT_RECOVERED = "draft_recovered"
    # Accounts and keys (actor: the account that acted; data names the account acted on).
    SET_UP = "set_up"  # first start: the first admin account and the recovery key created
    ACCOUNT_ADDED = "account_added"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ACCOUNT_UNLOCKED = "account_unlocked"
    PASSWORD_RESET = "password_reset"
    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"  # written at the next sign-in (the log opens only with a key)
    SESSION_LOCKED = "session_locked"
    REAUTHENTICATED = "reauthenticated"  # the password asked again (sign-off, approvals, unlock)
    KEYS_ROTATED = "keys_rotated"
    KEYS_RECOVERED = "keys_recovered"
    # The chart assistant (data: the model file sha256 and prompt version that proposed it).
    ASSISTANT_PROPOSED = "assistant_proposed"
    ASSISTANT_WRITTEN = "assistant_written"
    ASSISTANT_REJECTED = "assistant_rejected"  # the clinician said no
    ASSISTANT_REFUSED = "assistant_refused"  # an approval refused (the proposal changed since shown)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(
    seq: int,
    at: str,
    event: str,
    consultation_id: str | None,
    actor: str | None,
    data: str,
    prev: str,
    key: bytes | None = None,
) -> str:
    """SHA-256 of the entry's canonical form, or its HMAC-SHA256 under `key` (a keyed entry)."""
    canonical = json.dumps(
        [seq, at, event, consultation_id, actor, data, prev], ensure_ascii=False, separators=(",", ":")
    )
    if key is None:
        return sha256_text(canonical)
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _signing_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@dataclass(frozen=True)
class AuditKey:
    """One data key's audit keys: `key_id` names the data key (never reveals it); `mac` keys the
    chain's HMACs while it is current; `seed` is its ed25519 checkpoint key."""

    key_id: str
    mac: bytes
    seed: bytes


ERA_EVENTS = ("audit_keyed", "audit_rekeyed")  # each starts a span of entries under one key


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
    kind: str  # altered | removed | unanchored | unkeyed | unprotected | unverifiable | checkpoint
    message: str


@dataclass
class VerifyReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keyed: bool = False  # the chain is checked with the installation's key (an HMAC chain)
    checkpoint: dict[str, Any] | None = None  # the checkpoint verified against: seq, made_at, ok

    @property
    def ok(self) -> bool:
        return not self.problems


def entry_from_row(row: sqlite3.Row) -> AuditEntry:
    try:
        data = json.loads(row["data"])
    except json.JSONDecodeError:
        data = {"_unparseable": row["data"]}
    return from_row(AuditEntry, row, data=data)


class AuditLog:
    """Appends inside the caller's transaction, so an event and the change it records commit together.

    `keys`: the installation's audit keys, the current data key's first, then those retired by
    rotations (their spans of the log are checked with them); None in a store without accounts
    (plain SHA-256)."""

    def __init__(self, anchor_path: Path, *, keys: list[AuditKey] | None = None) -> None:
        self.anchor_path = anchor_path
        self.keys = keys or []
        self.mac_key = self.keys[0].mac if self.keys else None
        self._signing = _signing_key(self.keys[0].seed) if self.keys else None
        self._publics = {_public_hex(_signing_key(k.seed)) for k in self.keys}
        self._macs = {k.key_id: k.mac for k in self.keys}

    @property
    def public_key(self) -> str | None:
        """The installation's checkpoint key (hex), for IT to record beside exported checkpoints."""
        return _public_hex(self._signing) if self._signing is not None else None

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
        digest = entry_hash(seq, at, event, consultation_id, actor, payload, prev, self.mac_key)
        conn.execute(
            "INSERT INTO audit(seq, at, event, consultation_id, actor, data, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, at, event, consultation_id, actor, payload, prev, digest),
        )
        return AuditEntry(seq, at, event, consultation_id, actor, data, prev, digest)

    def _last_era(self, conn: sqlite3.Connection) -> AuditEntry | None:
        marks = ",".join("?" * len(ERA_EVENTS))
        row = conn.execute(
            f"SELECT * FROM audit WHERE event IN ({marks}) ORDER BY seq DESC LIMIT 1", ERA_EVENTS
        ).fetchone()
        return entry_from_row(row) if row is not None else None

    def needs_keying(self, conn: sqlite3.Connection) -> bool:
        """A keyed store whose log is not yet under the current key: its first keyed open, or the
        first open after a key rotation."""
        if not self.keys:
            return False
        last = self._last_era(conn)
        return last is None or last.data.get("key_id", self.keys[0].key_id) != self.keys[0].key_id

    def start_keyed(self, conn: sqlite3.Connection) -> AuditEntry:
        """The entry that starts the current key's span (in a write tx): `audit_keyed` chains every
        plain entry before it under the key; `audit_rekeyed` follows a rotation."""
        last = self._last_era(conn)
        current = self.keys[0].key_id
        if last is None:
            plain = self.head(conn)[0]
            return self.append(
                conn, AuditEvent.AUDIT_KEYED, actor="clarke-desktop", scheme=KEYED_SCHEME,
                plain_entries=plain, key_id=current,
            )  # fmt: skip
        return self.append(
            conn, AuditEvent.AUDIT_REKEYED, actor="clarke-desktop", scheme=KEYED_SCHEME,
            key_id=current, previous_key_id=last.data.get("key_id"),
        )  # fmt: skip

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
        return [entry_from_row(r) for r in rows]

    def head(self, conn: sqlite3.Connection) -> tuple[int, str]:
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (last["seq"], last["hash"]) if last else (0, GENESIS)

    # --- checkpoints ----------------------------------------------------------------------

    def checkpoint(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """The head signed with the installation's checkpoint key, to be kept off the machine."""
        if self._signing is None or self.mac_key is None:
            raise ValueError("audit checkpoints need the installation's key: sign in first")
        seq, digest = self.head(conn)
        body: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "seq": seq,
            "hash": digest,
            "made_at": utc_now_iso(),
            "public_key": _public_hex(self._signing),
        }
        return {**body, "signature": self._signing.sign(_canonical(body)).hex()}

    def _check_checkpoint(
        self, rows: dict[int, sqlite3.Row], checkpoint: dict[str, Any]
    ) -> tuple[list[AuditProblem], dict[str, Any]]:
        seq = checkpoint.get("seq")
        summary: dict[str, Any] = {"seq": seq, "made_at": checkpoint.get("made_at"), "ok": False}

        def refuse(message: str, kind: str = "checkpoint") -> tuple[list[AuditProblem], dict[str, Any]]:
            return [AuditProblem(seq if isinstance(seq, int) else 0, kind, message)], summary

        body = {k: v for k, v in checkpoint.items() if k != "signature"}
        if body.get("format") != CHECKPOINT_FORMAT or not isinstance(seq, int) or seq < 0:
            return refuse("the checkpoint file is not a Clarke audit checkpoint")
        if self._signing is None:
            return refuse("a checkpoint can only be checked signed in (it needs the installation's key)")
        if body.get("public_key") not in self._publics:
            return refuse("the checkpoint was not made by this installation (its key differs)")
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(body["public_key"])).verify(
                bytes.fromhex(str(checkpoint.get("signature", ""))), _canonical(body)
            )
        except (InvalidSignature, ValueError):
            return refuse("the checkpoint's signature does not match its content (the file was edited)")
        made = f"the checkpoint of {body.get('made_at')}"
        if seq == 0:
            summary["ok"] = True
            return [], summary
        row = rows.get(seq)
        if row is None:
            return refuse(f"entry {seq}, the head recorded in {made}, has been removed", "removed")
        if row["hash"] != body.get("hash"):
            return refuse(
                f"the log up to entry {seq} differs from {made}: entries at or before {seq} were "
                "changed, removed or re-chained since",
                "altered",
            )
        summary["ok"] = True
        return [], summary

    # --- verification ---------------------------------------------------------------------

    def verify(self, conn: sqlite3.Connection, checkpoint: dict[str, Any] | None = None) -> VerifyReport:
        rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        problems: list[AuditProblem] = []
        notes: list[str] = []
        keyed_from = next((r["seq"] for r in rows if r["event"] == AuditEvent.AUDIT_KEYED), None)
        era_key: bytes | None = None  # the span's HMAC key (None before the log was keyed)
        unknown_era = False  # a span under a key this installation does not hold
        if self.mac_key is not None and keyed_from is None and rows:
            problems.append(
                AuditProblem(
                    1,
                    "unkeyed",
                    "the log carries no entry made with this installation's key: it was rewritten "
                    "or replaced by someone without the key",
                )
            )
        elif self.mac_key is None and keyed_from is not None:
            problems.append(
                AuditProblem(
                    keyed_from,
                    "unverifiable",
                    f"entries from {keyed_from} on are keyed; they can only be checked signed in",
                )
            )
        expected_seq, prev_hash = 1, GENESIS
        prev_entry: AuditEntry | None = None
        for row in rows:
            entry = entry_from_row(row)
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
            keyed = keyed_from is not None and entry.seq >= keyed_from
            if keyed and self.mac_key is None:
                expected_seq, prev_hash, prev_entry = entry.seq + 1, entry.hash, entry
                continue
            if keyed and entry.event in ERA_EVENTS:  # a span under one data key starts here
                key_id = entry.data.get("key_id")
                era_key = self._macs.get(key_id) if key_id else self.mac_key
                unknown_era = era_key is None
                if unknown_era:
                    problems.append(
                        AuditProblem(
                            entry.seq,
                            "unverifiable",
                            f"entries from {entry.seq} on claim a key this installation never held "
                            f"({key_id}): they cannot be checked",
                        )
                    )
            if keyed and unknown_era:
                expected_seq, prev_hash, prev_entry = entry.seq + 1, entry.hash, entry
                continue
            recomputed = entry_hash(
                entry.seq,
                entry.at,
                entry.event,
                entry.consultation_id,
                entry.actor,
                row["data"],
                entry.prev_hash,
                era_key if keyed else None,
            )
            if not hmac.compare_digest(recomputed, entry.hash):
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
            if entry.event == AuditEvent.AUDIT_PROTECTION_RESTORED:
                problems.append(
                    AuditProblem(
                        entry.seq,
                        "unprotected",
                        f"the append-only triggers {', '.join(entry.data.get('triggers', []))} were found "
                        f"removed and put back at {entry.at} (entry {entry.seq}): the database was "
                        "written around them; compare with an earlier checkpoint",
                    )
                )
            expected_seq, prev_hash, prev_entry = entry.seq + 1, entry.hash, entry
        head_seq = prev_entry.seq if prev_entry else 0
        head_hash = prev_entry.hash if prev_entry else GENESIS
        self._check_anchor(rows, head_seq, problems, notes)
        summary = None
        if checkpoint is not None:
            found, summary = self._check_checkpoint({r["seq"]: r for r in rows}, checkpoint)
            problems.extend(found)
        return VerifyReport(
            len(rows),
            head_seq,
            head_hash,
            problems,
            notes,
            keyed=self.mac_key is not None,
            checkpoint=summary,
        )

    def _check_anchor(
        self, rows: list[sqlite3.Row], head_seq: int, problems: list[AuditProblem], notes: list[str]
    ) -> None:
        anchor = self.read_anchor()
        if anchor is None:
            if rows and self.mac_key is not None:
                problems.append(
                    AuditProblem(
                        head_seq,
                        "unanchored",
                        f"the head anchor file {self.anchor_path} has been removed: entries may have "
                        "been cut from the end (check against a checkpoint)",
                    )
                )
            elif rows:
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
