"""Sealing the patient files written before the installation had accounts.

Recordings and signed PDFs stored while there were no accounts are plaintext. Once a sign-in has
opened the data key, `seal_plaintext_files` seals each one in place (an atomic replace: the file
is whole before and after) and records the file's new sha256 with an audited `file_sealed` entry
naming both hashes, so the checks that compare a stored file with its recorded hash (re-export,
write-back retry) go on working and the change is traceable.

Crash safety: the file is sealed first, then the row updated. A kill in between leaves a sealed
file whose row still holds the plaintext hash; the next sweep finds it sealed, checks that its
content still hashes to the recorded plaintext hash, and only then records the new hash. A file
whose content matches neither is left alone and reported: it was changed by someone else.

Explicit exports outside the data folder are the clinician's readable copies and stay as they are
(no key covers them).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from clarke_desktop.files import file_sha256
from clarke_desktop.identity import sealed
from clarke_desktop.store.app import AppStore
from clarke_desktop.store.audit import AuditEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealOutcome:
    kind: str  # recording | pdf
    row_id: int
    path: Path
    before: str | None  # the recorded (plaintext) sha256
    after: str | None  # the sealed file's sha256; None when it was left alone
    problem: str | None = None


def seal_plaintext_files(store: AppStore, *, actor: str | None) -> list[SealOutcome]:
    """Seal every stored recording and PDF in the data folder that is still plaintext (or finish
    one a kill interrupted); nothing happens without an open data key."""
    outcomes: list[SealOutcome] = []
    rows = store.db.query("SELECT id, path, sha256 FROM audio WHERE deleted_at IS NULL AND path IS NOT NULL")
    for row in rows:
        outcomes += _seal(store, "recording", int(row["id"]), Path(row["path"]), row["sha256"], actor)
    for row in store.db.query("SELECT id, path, sha256 FROM exports"):
        outcomes += _seal(store, "pdf", int(row["id"]), Path(row["path"]), row["sha256"], actor)
    return outcomes


def _seal(
    store: AppStore, kind: str, row_id: int, path: Path, recorded: str | None, actor: str | None
) -> list[SealOutcome]:
    key = sealed.files_key(path)
    if key is None or not path.is_file():
        return []  # outside the data folder (a chosen export), gone, or no sign-in: nothing to do
    if sealed.is_sealed(path):
        current = file_sha256(path)
        if recorded is None or current == recorded:
            return []  # sealed when written, or already recorded
        content = hashlib.sha256(sealed.read_file(path, key)).hexdigest()
        if content != recorded:
            problem = f"{path} matches neither its recorded hash nor its plaintext: left as it is"
            log.error(problem)
            return [SealOutcome(kind, row_id, path, recorded, None, problem)]
        _record(store, kind, row_id, path, recorded, current, actor)  # a kill came between seal and row
        return [SealOutcome(kind, row_id, path, recorded, current)]
    data = path.read_bytes()
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        problem = f"{path} no longer matches its recorded hash: not sealed, so the change stays visible"
        log.error(problem)
        return [SealOutcome(kind, row_id, path, recorded, None, problem)]
    sealed.write_file(path, data, key)
    after = file_sha256(path)
    _record(store, kind, row_id, path, recorded, after, actor)
    return [SealOutcome(kind, row_id, path, recorded, after)]


def _record(
    store: AppStore, kind: str, row_id: int, path: Path, before: str | None, after: str, actor: str | None
) -> None:
    table = "audio" if kind == "recording" else "exports"
    consultation = store.db.query(f"SELECT consultation_id FROM {table} WHERE id = ?", (row_id,))
    with store._tx() as tx:
        if kind == "recording":
            tx.conn.execute("UPDATE audio SET sha256 = ? WHERE id = ?", (after, row_id))
        else:
            tx.conn.execute(
                "UPDATE exports SET sha256 = ?, bytes = ? WHERE id = ?", (after, path.stat().st_size, row_id)
            )
        tx.event(
            AuditEvent.FILE_SEALED,
            consultation[0]["consultation_id"] if consultation else None,
            actor,
            kind=kind,
            row_id=row_id,
            file=path.name,
            plaintext_sha256=before,
            sealed_sha256=after,
        )
