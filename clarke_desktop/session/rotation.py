"""Re-encrypting an installation's patient data under a new data key (`clarke-desktop keys rotate`).

The account book journals the new key first (sealed under the old one, which every account still
holds), so from then on every sign-in opens both and writes with the new one. `reencrypt` then
moves what is left under the old key, each step whole or not at all and safe to repeat:

- both databases: SQLCipher `PRAGMA rekey`, one transaction each;
- every sealed file in the data folder (recordings, WAVs, signed PDFs, previews): read with the key
  that opens it and written again under the new one (an atomic replace), and the sha256 kept for
  it in the application database updated, since the stored bytes changed;
- the audit log: its next entry opens a span under the new key (`audit_rekeyed`); the spans
  before it stay checkable with the retired key, which the account book keeps.

A kill at any point leaves a mix the next run (or the next sign-in) finishes: a database or file
still under the old key is moved, one already moved is left. A file that opens with the new key
while its recorded hash is the old file's was moved by a rotation killed before recording it:
only a holder of the new key could have sealed it, so its hash is recorded then. The account book
gives every account (and a new recovery key) the new key in one last transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from clarke_desktop import paths
from clarke_desktop.files import file_sha256
from clarke_desktop.identity import keyring, sealed
from clarke_desktop.identity.keys import subkey
from clarke_desktop.store import AppStore
from local_fhir import cipher

log = logging.getLogger(__name__)


@dataclass
class Reencrypted:
    databases: list[str] = field(default_factory=list)  # file names rekeyed now
    files: int = 0  # sealed files moved to the new key now
    hashes_updated: list[dict[str, str]] = field(default_factory=list)  # {"path", "before", "after"}


def reencrypt(data_dir: Path) -> Reencrypted:
    """Move everything in `data_dir` still under a retired key to the current one (idempotent)."""
    data_keys = keyring.data_keys(data_dir)
    if len(data_keys) < 2:
        return Reencrypted()  # one key: nothing can be under another
    done = Reencrypted()
    for db, purpose in ((paths.app_db_path(), "app-db"), (paths.own_fhir_db_path(), "fhir-db")):
        ours = db.parent.resolve() == data_dir.resolve() and db.is_file() and not cipher.is_plaintext(db)
        if ours and cipher.rekey(db, [subkey(k, purpose) for k in data_keys]):
            done.databases.append(db.name)
    files_keys = [subkey(k, sealed.PURPOSE) for k in data_keys]
    moved: dict[Path, str] = {}
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.is_symlink() or not sealed.is_sealed(path):
            continue
        key = sealed.opening_key(path, files_keys)
        if key is None or key == files_keys[0]:
            continue
        before = file_sha256(path)
        data = b"".join(sealed.iter_records(path, key, unfinished=True))  # a capture awaiting recovery too
        sealed.write_file(path, data, files_keys[0])
        moved[path.resolve()] = before
        done.files += 1
    with AppStore(paths.app_db_path()) as store:  # opens under the new key; its log starts the new span
        done.hashes_updated = _record_hashes(store, moved, files_keys[0])
    return done


def _record_hashes(store: AppStore, moved: dict[Path, str], current: bytes) -> list[dict[str, str]]:
    updated: list[dict[str, str]] = []
    for table, extra in (("audio", ""), ("exports", ", bytes = ?")):
        for row in store.db.query(f"SELECT id, path, sha256 FROM {table}"):
            path = Path(row["path"])
            if not path.is_file() or not sealed.is_sealed(path):
                continue
            if path.resolve() not in moved and sealed.opening_key(path, [current]) is None:
                continue  # neither moved now nor under the new key: not the rotation's to explain
            after = file_sha256(path)
            if after == row["sha256"]:
                continue
            args: tuple[object, ...] = (after, path.stat().st_size, row["id"]) if extra else (after, row["id"])
            with store.db.atomic() as conn:
                conn.execute(f"UPDATE {table} SET sha256 = ?{extra} WHERE id = ?", args)
            updated.append({"path": path.name, "before": str(row["sha256"]), "after": after})
    return updated
