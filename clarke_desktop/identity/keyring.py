"""The data keys this process has opened, by installation (data folder), in memory only.

A sign-in (or the first start's set-up) puts the installation's data key here; a store opened
afterwards in that data folder takes its own subkey from it (keys.subkey: "app-db", "fhir-db",
"files"), so the many places that open a store need no key passed through them. Nothing here is
ever written to disk; `forget` drops a key (the window does on quit).
"""

from __future__ import annotations

import threading
from pathlib import Path

from clarke_desktop.identity.keys import subkey
from local_fhir import cipher

_keys: dict[Path, bytes] = {}
_older: dict[Path, list[bytes]] = {}  # data keys retired by rotations: still open what they sealed
_lock = threading.Lock()


def _folder(path: Path) -> Path:
    return path.expanduser().resolve()


def remember(data_dir: Path, data_key: bytes, older: list[bytes] | None = None) -> None:
    """`data_key` seals everything written from now on; `older` (retired by a key rotation, or the
    one a rotation in progress replaces) only open what they sealed."""
    with _lock:
        _keys[_folder(data_dir)] = data_key
        _older[_folder(data_dir)] = [k for k in (older or []) if k != data_key]


def forget(data_dir: Path) -> None:
    with _lock:
        _keys.pop(_folder(data_dir), None)
        _older.pop(_folder(data_dir), None)


def data_keys(data_dir: Path) -> list[bytes]:
    """Every data key open for the folder, the current one first ([] when none)."""
    with _lock:
        key = _keys.get(_folder(data_dir))
        return [key, *_older.get(_folder(data_dir), [])] if key is not None else []


def data_key(data_dir: Path) -> bytes | None:
    with _lock:
        return _keys.get(_folder(data_dir))


def key_for(file: Path, purpose: str) -> bytes | None:
    """The subkey for a file in a data folder whose data key is open here, else None."""
    key = data_key(file.parent)
    return subkey(key, purpose) if key is not None else None


def keys_for(file: Path, purpose: str) -> list[bytes]:
    """The subkeys for a file in a data folder, current first then retired ones (to open)."""
    return [subkey(k, purpose) for k in data_keys(file.parent)]


def keys_within(path: Path, purpose: str) -> list[bytes]:
    """As `key_within`, with the retired keys after the current one (to open an older file)."""
    resolved = _folder(path)
    with _lock:
        folder = next((f for f in resolved.parents if f in _keys), None)
    return [subkey(k, purpose) for k in data_keys(folder)] if folder is not None else []


def key_within(path: Path, purpose: str) -> bytes | None:
    """The subkey for a file anywhere under a data folder whose data key is open here (the nearest
    such folder above it: recordings/, exports/, previews/), else None."""
    resolved = _folder(path)
    with _lock:
        key = next((_keys[folder] for folder in resolved.parents if folder in _keys), None)
    return subkey(key, purpose) if key is not None else None


def _fhir_key(path: Path) -> bytes | None:
    """local_fhir asks here for the key of a FHIR database: the app's own store in a data folder
    this process signed into (a store IT names elsewhere stays as IT made it)."""
    return key_for(path, "fhir-db")


cipher.register_key_provider(_fhir_key)
