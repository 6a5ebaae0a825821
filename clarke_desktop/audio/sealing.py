"""How recordings reach the installation's file encryption.

The audio package may not import identity (the layers contract), so the layer above hands it an
object with this shape: `clarke_desktop.identity.sealed.FILES`, which seals with the key of the
data folder a path is in. Without one (None), recordings are plaintext, exactly as before accounts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

SEALED_CONTAINER = "clarke-sealed-1"  # the sidecar's "container" for a sealed capture


class RecordAppender(Protocol):
    """A sealed stream written record by record, each on disk before `append` returns."""

    def append(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


class SealedFiles(Protocol):
    def sealing(self, path: Path) -> bool:
        """Whether a file written at `path` is sealed (a key is open for its data folder)."""
        ...

    def appender(self, path: Path) -> RecordAppender: ...

    def write(self, path: Path, data: bytes | memoryview) -> None:
        """Seal `data` into `path`, all or nothing."""
        ...

    def read(self, path: Path) -> bytes:
        """A finished file's contents, decrypted (a plaintext file as it is)."""
        ...

    def stream(self, path: Path) -> Iterator[bytes]:
        """A sealed stream's records, an unfinished one (a crash) included, its torn end dropped."""
        ...

    def is_sealed(self, path: Path) -> bool: ...

    def payload_size(self, path: Path) -> int: ...
