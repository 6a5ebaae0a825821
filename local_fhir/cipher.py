"""SQLite files encrypted with SQLCipher (AES-256, page-level, with per-page HMAC), opened with a
raw 256-bit key (no passphrase: the key comes from the caller's own key management, so SQLCipher's
PBKDF2 is skipped and opening costs nothing).

`sqlcipher3` is the maintained DB-API module (the pysqlite fork by the sqlite3 module's own
lineage) with SQLCipher 4 built in; its connections behave as sqlite3's. Its exceptions are its
own classes, so callers catch `ERRORS`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlcipher3 import dbapi2 as sqlcipher

PLAIN_HEADER = b"SQLite format 3\x00"
ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, sqlcipher.Error)
DatabaseErrors: tuple[type[Exception], ...] = (sqlite3.DatabaseError, sqlcipher.DatabaseError)
IntegrityErrors: tuple[type[Exception], ...] = (sqlite3.IntegrityError, sqlcipher.IntegrityError)
OperationalErrors: tuple[type[Exception], ...] = (sqlite3.OperationalError, sqlcipher.OperationalError)

# Where keys come from. local_fhir manages no keys itself: the application that owns the data
# registers a provider (Clarke Desktop: the key its sign-in opened for that data folder).
KeyProvider = Callable[[Path], "bytes | None"]
_providers: list[KeyProvider] = []


def register_key_provider(provider: KeyProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def key_for(path: Path) -> bytes | None:
    for provider in _providers:
        key = provider(path)
        if key is not None:
            return key
    return None


def unlock_from_command_line(user: str | None, password_file: Path | None) -> None:
    """For `local-fhir` run on its own: the applications installed beside it that own encrypted
    stores sign in (entry point group "local_fhir.unlock": a callable(user, password_file) that
    registers a key provider), with the same sign-in their own commands use."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="local_fhir.unlock"):
        entry.load()(user, password_file)


class WrongKey(Exception):
    """The file is encrypted with another key, or is not a database."""


class NeedsKey(Exception):
    """The file is encrypted and no key was given."""


def is_plaintext(path: Path) -> bool:
    """An ordinary SQLite file (or an empty / missing one, which will be created as asked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return True
    return head in (b"", PLAIN_HEADER)


def _pragma_key(key: bytes) -> str:
    return f"PRAGMA key = \"x'{key.hex()}'\""


def rekey(path: Path, keys: list[bytes]) -> bool:
    """Re-encrypt an encrypted database under `keys[0]` from whichever of `keys` opens it (one
    transaction: a crash leaves it whole under the old key or the new). True when it changed;
    WrongKey when none opens it."""
    for i, key in enumerate(keys):
        try:
            conn = connect(path, key, isolation_level=None)
        except WrongKey:
            continue
        try:
            if i > 0:
                conn.execute(f"PRAGMA rekey = \"x'{keys[0].hex()}'\"")
            return i > 0
        finally:
            conn.close()
    raise WrongKey(f"{path} opens with none of the keys given")


def connect(path: Path, key: bytes | None, **kwargs: Any) -> Any:
    """A connection to `path`: SQLCipher with `key`, plain sqlite3 without. A plaintext file
    opened with a key is encrypted in place first (the one-way move to encryption at rest)."""
    if key is None:
        if not is_plaintext(path):
            raise NeedsKey(f"{path} is encrypted: sign in to open it")
        return sqlite3.connect(path, **kwargs)
    if is_plaintext(path) and path.exists() and path.stat().st_size > 0:
        encrypt_in_place(path, key)
    conn = sqlcipher.connect(str(path), **kwargs)
    conn.execute(_pragma_key(key))
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError as e:
        conn.close()
        raise WrongKey(f"{path} does not open with this key ({e})") from e
    return conn


def connect_uri(uri: str, key: bytes | None, **kwargs: Any) -> Any:
    """A read-only (URI) connection; with `key`, SQLCipher (an unencrypted file is not migrated:
    a read-only opener never writes)."""
    if key is None:
        return sqlite3.connect(uri, uri=True, **kwargs)
    conn = sqlcipher.connect(uri, uri=True, **kwargs)
    conn.execute(_pragma_key(key))
    return conn


def encrypt_in_place(path: Path, key: bytes) -> None:
    """Re-write a plaintext database encrypted (sqlcipher_export), replacing it atomically; the
    plaintext copy and its WAL are removed."""
    plain = sqlite3.connect(path)
    plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plain.execute("PRAGMA journal_mode=DELETE")
    plain.close()
    target = path.with_name(path.name + ".encrypting")
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    conn = sqlcipher.connect(str(path))
    try:
        conn.execute(f"ATTACH DATABASE ? AS encrypted KEY \"x'{key.hex()}'\"", (str(target),))
        conn.execute("SELECT sqlcipher_export('encrypted')")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        conn.execute("DETACH DATABASE encrypted")
    finally:
        conn.close()
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    os.replace(target, path)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
