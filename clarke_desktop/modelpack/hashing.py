"""Streaming sha256, copy-while-hashing, and the per-user cache of verified hashes.

The cache serves the quick check for display only (`models status`, doctor, the app's model
panel): an entry is keyed by the file's absolute path and only believed while its size and mtime
(ns) are unchanged. The user can write it, and a same-size edit with its mtime set back looks
unchanged, so it never decides whether a model is loaded: `verify.verify_for_use` hashes every
file in full, once per process and file state, before first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from clarke_desktop import paths
from clarke_desktop.files import BLOCK, Progress, atomic_write


def copy_with_sha256(src: Path, dst: Path, progress: Progress | None = None) -> tuple[int, str]:
    """Copy src to dst in one pass, returning (bytes copied, sha256 of what was written)."""
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(BLOCK):
            digest.update(block)
            fout.write(block)
            size += len(block)
            if progress:
                progress(len(block))
        fout.flush()
        os.fsync(fout.fileno())
    return size, digest.hexdigest()


class HashCache:
    """sha256 of files already fully hashed, valid while (size, mtime_ns) are unchanged (display only)."""

    _lock = threading.Lock()

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.cache_dir() / "model-hashes.json"

    def _read(self) -> dict[str, object]:  # entries are checked where they are read
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a missing or damaged cache only costs a re-hash
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(path: Path) -> str:
        return str(Path(path).resolve())

    def get(self, path: Path) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        entry = self._read().get(self._key(path))
        if not isinstance(entry, dict):
            return None
        if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
            return None
        sha = entry.get("sha256")
        return sha if isinstance(sha, str) else None

    def put(self, path: Path, sha256: str) -> None:
        st = os.stat(path)
        with self._lock:
            data = self._read()
            data[self._key(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True))
