"""What a recording leaves on disk besides its samples: the JSON sidecar (written before the first
sample, so even a crash in the first block is found) and the lock held while it records (so
recovery can tell a live recording from an orphan). Shared by the recorder and recovery, so
neither imports the other. Portable: the lock is filelock's (fcntl on POSIX, msvcrt on Windows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from clarke_desktop.files import atomic_write

TARGET_RATE = 16_000  # what recordings are stored at (MedASR's rate)
SIDECAR_VERSION = 1


def write_sidecar(path: Path, data: dict[str, Any]) -> None:
    """Atomic replace + fsync, so a crash leaves either the old or the new sidecar, never half."""
    atomic_write(path, json.dumps(data, indent=2))


def lock_path(sidecar: Path) -> Path:
    return sidecar.with_suffix(".lock")


class RecordingLock:
    """Held from the first sample to the last: an unlocked "recording" sidecar is an orphan."""

    def __init__(self, sidecar: Path) -> None:
        self.path = lock_path(sidecar)
        self._lock = FileLock(self.path, timeout=0)

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()
        self.path.unlink(missing_ok=True)


def is_locked(sidecar: Path) -> bool:
    """Whether a recorder (in this or another process) still holds the sidecar's lock."""
    path = lock_path(sidecar)
    if not path.exists():
        return False
    probe = FileLock(path, timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False
