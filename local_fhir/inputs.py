"""Reading import files within limits (`local-fhir import`, `local-fhir validate`).

- A `.gz` file is expanded as a stream, never whole in memory, and refused (`InputTooLarge`, the
  file named) as soon as it has expanded more than `MAX_GZIP_RATIO` times its compressed size (once
  past `GZIP_RATIO_AFTER` bytes: small files compress well too) or past `MAX_GZIP_BYTES` in all: a
  decompression bomb stops after a few MB of work. FHIR NDJSON compresses 15-17 times (Synthea).
- An NDJSON line longer than `MAX_LINE_BYTES` is never held in memory: it is skipped to its end
  and reported by number (`lines` yields None for it), to be refused or quarantined like any bad line.
- A `.json` file (a Bundle or a resource, parsed whole) larger than `MAX_JSON_FILE_BYTES` is refused.

The limits are read when a file is opened, so a caller (or a test) can change them here.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1024 * 1024
MAX_LINE_BYTES = 64 * MiB  # one resource; a Binary or an attachment carries its data as base64
MAX_JSON_FILE_BYTES = 1024 * MiB
MAX_GZIP_BYTES = 16 * 1024 * MiB
MAX_GZIP_RATIO = 200
GZIP_RATIO_AFTER = 16 * MiB
_SKIP = MiB  # an over-long line is read past in pieces of this size


class InputTooLarge(ValueError):
    """A file or line over one of the limits above (the message names the file and the limit)."""


def _mib(n: int) -> str:
    return f"{n / MiB:,.1f} MiB"


class _Counting(io.RawIOBase):
    """The compressed file, counting the bytes the decompressor has taken from it."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        view[: len(data)] = data
        self.taken += len(data)
        return len(data)


class CappedGzip(io.RawIOBase):
    """A gzip file's expanded bytes, refused as soon as they pass the limits (`InputTooLarge`)."""

    def __init__(self, path: Path, max_bytes: int | None = None, max_ratio: float | None = None,
                 ratio_after: int | None = None):  # fmt: skip
        self.path = path
        self.max_bytes = MAX_GZIP_BYTES if max_bytes is None else max_bytes
        self.max_ratio = MAX_GZIP_RATIO if max_ratio is None else max_ratio
        self.ratio_after = GZIP_RATIO_AFTER if ratio_after is None else ratio_after
        self._file = path.open("rb")
        self._compressed = _Counting(self._file)
        self._gzip = gzip.GzipFile(fileobj=self._compressed, mode="rb")
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        n = self._gzip.readinto(buffer)
        self.expanded += n
        if self.expanded > self.max_bytes:
            raise InputTooLarge(
                f"{self.path.name}: expands to more than {_mib(self.max_bytes)}: refused as a "
                f"decompression bomb (stopped after {_mib(self.expanded)})"
            )
        if self.expanded > self.ratio_after and self.expanded > self.max_ratio * max(
            self._compressed.taken, 1
        ):
            raise InputTooLarge(
                f"{self.path.name}: expands more than {self.max_ratio:g} times its compressed size "
                f"({_mib(self._compressed.taken)} gave {_mib(self.expanded)}): refused as a "
                "decompression bomb"
            )
        return n

    def close(self) -> None:
        try:
            for part in (getattr(self, "_gzip", None), getattr(self, "_file", None)):
                if part is not None:
                    part.close()
        finally:
            super().close()


def open_input(path: Path) -> IO[bytes]:
    """A file's bytes (a `.gz` file's expanded ones, within the gzip limits), buffered."""
    if path.name.endswith(".gz"):
        return io.BufferedReader(CappedGzip(path), buffer_size=256 * 1024)
    return path.open("rb")


def lines(path: Path, max_line_bytes: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes) for each line; None for a line longer than the cap (its
    content without the line end), which is read past, never held."""
    cap = MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
    with open_input(path) as fh:
        number = 0
        while line := fh.readline(cap + 1):
            number += 1
            if len(line) <= cap or line.endswith(b"\n") and len(line.rstrip(b"\r\n")) <= cap:
                yield number, line
                continue
            while line and not line.endswith(b"\n"):
                line = fh.readline(_SKIP)
            yield number, None


def line_too_long(number: int, cap: int) -> str:
    return f"line {number} is longer than {cap:,} bytes (the limit for one resource): refused unread"


def read_json_file(path: Path) -> bytes:
    """A whole `.json` file's bytes, refused if it is larger than `MAX_JSON_FILE_BYTES`."""
    with path.open("rb") as fh:
        data = fh.read(MAX_JSON_FILE_BYTES + 1)
    if len(data) > MAX_JSON_FILE_BYTES:
        raise InputTooLarge(
            f"{path.name}: larger than {_mib(MAX_JSON_FILE_BYTES)}, the limit for a JSON file"
        )
    return data
