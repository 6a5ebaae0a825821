"""Files written so a crash or a full disk never leaves half of one, and files hashed one way.

`atomic_write` writes a temporary file beside the target, fsyncs it, gives it its mode (private by
default), replaces the target in one step and, on POSIX, syncs the folder so the rename survives a
power cut. `file_sha256` reads in 8 MiB blocks, reporting progress for large model files."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

BLOCK = 8 * 1024 * 1024
Progress = Callable[[int], None]  # called with the number of bytes just processed


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def replace_durably(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it over `path`, and sync the folder (POSIX)."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if os.name == "posix":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o600) -> Path:
    """Write `data` to `path` all or nothing (text as UTF-8). Returns `path`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return atomic_write_with(path, lambda fh: fh.write(payload), mode=mode)


STALE_TEMPORARY_S = 3600.0  # older than this, no writer of ours is still filling it


def remove_stale_temporaries(folder: Path, *, older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Delete the temporary files `atomic_write_with` leaves when killed mid-write (`.NAME.*.tmp`)
    anywhere under `folder`, once they are older than any write in progress could be. The target
    they were for is untouched: it is either the old file or the new one, never half of one."""
    import time

    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    cutoff = time.time() - older_than_s
    for tmp in folder.rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            if tmp.is_file() and not tmp.is_symlink() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
    return removed


def atomic_write_with(path: Path, write: Callable[[IO[bytes]], object], *, mode: int = 0o600) -> Path:
    """`write` fills a temporary file beside `path`, which then replaces it durably (fsync'd, the
    folder synced); a failure (a full disk) leaves `path` as it was and no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        if os.name == "posix":
            os.chmod(tmp, mode)
        replace_durably(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
