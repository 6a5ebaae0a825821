"""The application database: one SQLite file, versioned schema, file readable by the user only.

Durability first: WAL with synchronous=FULL, so every committed autosave survives a kill or a
power loss. One connection per store guarded by a lock; the GUI calls in from worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from clarke_desktop import paths
from clarke_desktop.errors import ClarkeError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


class StoreError(ClarkeError):
    """The application database cannot be used; the message names the file."""


# The triggers that make signed records and the audit log append-only, by name (created by
# migration 1, checked at every open).
PROTECTIVE_TRIGGERS: dict[str, str] = {
    f"{table}_{suffix}": (
        f"CREATE TRIGGER {table}_{suffix} BEFORE {verb} ON {table} BEGIN SELECT RAISE(ABORT, '{why}'); END"
    )
    for table, stem, why in (
        ("letter_versions", "immutable", "letter versions are immutable"),
        ("signoffs", "immutable", "sign-off records are immutable"),
        ("audit", "append_only", "the audit log is append-only"),
    )
    for suffix, verb in ((f"{stem}_u", "UPDATE"), (f"{stem}_d", "DELETE"))
}


def _same_sql(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


# Schema migrations as SQL scripts; a script's position is the version it brings the file to.
# Each runs in one transaction together with the version bump.
MIGRATIONS: list[str] = [
    """
        CREATE TABLE consultations (
            id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL,
            clinician TEXT,
            doc_type TEXT NOT NULL DEFAULT 'clinic',
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            consent_at TEXT,
            consent_by TEXT,
            consent_note TEXT,
            signed_at TEXT,
            signed_by TEXT,
            encounter_ref TEXT,
            document_reference TEXT
        );
        CREATE INDEX consultations_status ON consultations(status);

        CREATE TABLE audio (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            path TEXT NOT NULL,
            source TEXT NOT NULL,
            sha256 TEXT,
            duration_s REAL,
            created_at TEXT NOT NULL,
            deleted_at TEXT,
            delete_reason TEXT
        );
        CREATE INDEX audio_consultation ON audio(consultation_id);

        CREATE TABLE transcripts (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            created_at TEXT NOT NULL,
            origin TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            json TEXT NOT NULL
        );
        CREATE INDEX transcripts_consultation ON transcripts(consultation_id);

        CREATE TABLE contexts (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            created_at TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            json TEXT NOT NULL
        );

        -- Every saved state of a letter; rows are never updated or deleted.
        CREATE TABLE letter_versions (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            author TEXT,
            note TEXT,
            created_at TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            json TEXT NOT NULL,
            UNIQUE (consultation_id, version)
        );

        CREATE TABLE signoffs (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            signed_by TEXT NOT NULL,
            signed_at TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            UNIQUE (consultation_id, version)
        );

        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            consultation_id TEXT,
            actor TEXT,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );

        CREATE TRIGGER letter_versions_immutable_u BEFORE UPDATE ON letter_versions
        BEGIN SELECT RAISE(ABORT, 'letter versions are immutable'); END;
        CREATE TRIGGER letter_versions_immutable_d BEFORE DELETE ON letter_versions
        BEGIN SELECT RAISE(ABORT, 'letter versions are immutable'); END;
        CREATE TRIGGER signoffs_immutable_u BEFORE UPDATE ON signoffs
        BEGIN SELECT RAISE(ABORT, 'sign-off records are immutable'); END;
        CREATE TRIGGER signoffs_immutable_d BEFORE DELETE ON signoffs
        BEGIN SELECT RAISE(ABORT, 'sign-off records are immutable'); END;
        CREATE TRIGGER audit_append_only_u BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_append_only_d BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # v2: where each signed version was exported and whether it reached the FHIR store, so a
    # write-back that failed (store down at sign-off) can be retried by `clarke-desktop recover`.
    """
        CREATE TABLE exports (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE writebacks (
            id INTEGER PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations(id),
            version INTEGER NOT NULL,
            document_reference TEXT NOT NULL,
            composition TEXT NOT NULL,
            encounter TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (consultation_id, version)
        );
    """,
    # v3: what the clinician typed before (or beside) a letter: the transcript and the aside,
    # autosaved as they type so a closed window or a crash loses nothing. Replaced on each save.
    """
        CREATE TABLE draft_inputs (
            consultation_id TEXT PRIMARY KEY REFERENCES consultations(id),
            transcript TEXT NOT NULL,
            transcript_origin TEXT NOT NULL,
            aside TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
    """,
    # v4: the audit log looked up by event (the last key span's start, the last settings change),
    # at every open of the store: without it each open read the whole log.
    """
        CREATE INDEX audit_event ON audit(event, seq);
    """,
]


class Database:
    """A connection to the application database with its schema brought up to date."""

    def __init__(self, path: Path | None = None, *, key: bytes | None = None) -> None:
        """`key`: the database's SQLCipher key; by default the one for its data folder opened by
        this process's sign-in (identity.keyring), if any. A plaintext file is encrypted the first
        time it is opened with a key; an encrypted one never opens without it."""
        from clarke_desktop.identity import keyring
        from local_fhir import cipher

        self.path = Path(path) if path else paths.app_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = key if key is not None else keyring.key_for(self.path, "app-db")
        new = not self.path.exists()
        if new:
            # Create the file private before SQLite writes anything into it.
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        try:
            self.conn = cipher.connect(
                self.path, key, isolation_level=None, check_same_thread=False, timeout=10
            )
            self.encrypted = key is not None
            self.conn.row_factory = _row_factory(self.conn)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            self._migrate()
            self.restored_triggers = self._restore_protections()
        except cipher.NeedsKey as exc:
            raise StoreError(
                f"cannot open the application database {self.path}: it is encrypted (sign in to Clarke "
                "first) or damaged (restore it from the last backup, see the IT guide)"
            ) from exc
        except cipher.WrongKey as exc:
            raise StoreError(f"{self.path} does not open with this installation's key: {exc}") from exc
        except cipher.DatabaseErrors as exc:
            raise StoreError(f"cannot open the application database {self.path}: {exc}") from exc
        _make_private(self.path)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this app ({len(MIGRATIONS)}); "
                "update Clarke Desktop"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self._lock:
                try:
                    self.conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={version};\nCOMMIT;"
                    )
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise

    def _restore_protections(self) -> list[str]:
        """Re-create any append-only trigger found missing or altered, and name it: someone with
        the file and its key dropped it (the audit log records that on the store's first write)."""
        with self._lock:
            stored = {
                row[0]: row[1]
                for row in self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            }
            damaged = [
                name
                for name, sql in PROTECTIVE_TRIGGERS.items()
                if not _same_sql(stored.get(name) or "", sql)
            ]
            if damaged:
                script = "".join(f"DROP TRIGGER IF EXISTS {n}; {PROTECTIVE_TRIGGERS[n]};\n" for n in damaged)
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}COMMIT;")
            return damaged

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: no lost updates between processes)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            rows: list[sqlite3.Row] = self.conn.execute(sql, params).fetchall()
            return rows

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _row_factory(conn: Any) -> Any:
    """sqlite3.Row, or SQLCipher's own Row class for its connections (they are not interchangeable)."""
    module = type(conn).__module__
    if module.startswith("sqlcipher3"):
        from sqlcipher3 import dbapi2

        return dbapi2.Row
    return sqlite3.Row


def from_row(record: type[R], row: sqlite3.Row, **converted: Any) -> R:
    """The dataclass `record` read from a row whose columns bear its field names (other columns
    are ignored); `converted` gives the fields whose stored form differs (enums, paths, JSON)."""
    stored = {f.name: row[f.name] for f in dataclasses.fields(record) if f.name not in converted}
    return record(**stored, **converted)


def _make_private(db_path: Path) -> None:
    if os.name != "posix":
        return
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            os.chmod(p, 0o600)
