"""Sealed files: patient files at rest (recordings, signed letters, sign-off previews) as
authenticated AES-256-GCM records that open only with the installation's data key.

Format, version 1 (integers big-endian):

    header  MAGIC (8 bytes: b"CLKSEAL" and the version, 0x01) | file id (16 random bytes)
            | key check (16 bytes)
    record  u32 (bit 31: the final flag; bits 0-30: the body's length) | body
    body    nonce (12 random bytes) | AES-256-GCM ciphertext | tag (16 bytes)

Each file has its own key and key check, both from HKDF-SHA256 over the data key's "files" subkey
with the file id as salt, so a wrong key is named as such before any record is tried. A record's
associated data is the header, its index (u64) and its final flag: a record moved within the file,
dropped from it or spliced in from another file does not open, and a finished file ends with a
record that carries the final flag, so a finished file cut short is found too.

Writing: `Appender` adds one record at a time, each fsync'd (live audio: a kill loses only what was
not yet appended); a write that fails (a full disk) is cut back off the file, so the records
already saved stay whole and readable and a later append continues cleanly. `write_file` writes a
whole file (PDFs, WAVs) to a temporary file and renames it over the target: all or nothing.
Reading: `iter_records` / `read_file` for finished files (anything missing, altered or left over is
an error); `iter_records(..., unfinished=True)` for a stream a crash cut off (the torn last record
is dropped, and only that).

The functions with a `key` argument are the format; `read_bytes`, `write_bytes` and `FILES` take
the key from this process's keyring (the data folder the file sits in must be signed into).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clarke_desktop.errors import ClarkeError
from clarke_desktop.files import atomic_write, atomic_write_with
from clarke_desktop.identity import keyring

PURPOSE = "files"  # the data key's subkey for sealed files (keys.subkey)
FAMILY = b"CLKSEAL"
VERSION = 1
MAGIC = FAMILY + bytes([VERSION])
FILE_ID_BYTES = 16
CHECK_BYTES = 16
HEADER_BYTES = len(MAGIC) + FILE_ID_BYTES + CHECK_BYTES
NONCE_BYTES = 12
TAG_BYTES = 16
_PREFIX = struct.Struct(">I")
_FINAL = 1 << 31
RECORD_OVERHEAD = _PREFIX.size + NONCE_BYTES + TAG_BYTES
MAX_RECORD = 64 * 1024 * 1024  # plaintext bytes in one record: a reader never allocates more
WHOLE_FILE_RECORD = 1024 * 1024  # write_file's record size
_INFO = b"clarke sealed file v1"


class SealedFileError(ClarkeError):
    """A sealed file is damaged, cut short or altered, or was sealed with another key."""


class NoKey(SealedFileError):
    """A sealed file, and no sign-in has opened the key for its data folder in this process."""


def is_sealed(path: Path) -> bool:
    """Whether `path` is a sealed file (of any version)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(FAMILY)) == FAMILY
    except (FileNotFoundError, IsADirectoryError):
        return False


class _FileCipher:
    """One file's key, from the files key and the file's id."""

    def __init__(self, key: bytes, file_id: bytes) -> None:
        material = HKDF(hashes.SHA256(), 32 + CHECK_BYTES, salt=file_id, info=_INFO).derive(key)
        self.aead = AESGCM(material[:32])
        self.check = material[32:]
        self.header = MAGIC + file_id + self.check

    @classmethod
    def new(cls, key: bytes) -> _FileCipher:
        return cls(key, os.urandom(FILE_ID_BYTES))

    def _aad(self, index: int, final: bool) -> bytes:
        return self.header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")

    def record(self, index: int, data: bytes | memoryview, final: bool) -> bytes:
        if len(data) > MAX_RECORD:
            raise ValueError(f"a sealed record holds at most {MAX_RECORD} bytes")
        nonce = os.urandom(NONCE_BYTES)
        body = nonce + self.aead.encrypt(nonce, bytes(data), self._aad(index, final))
        return _PREFIX.pack(len(body) | (_FINAL if final else 0)) + body

    def open(self, index: int, body: bytes, final: bool) -> bytes:
        return self.aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], self._aad(index, final))


# --- writing ------------------------------------------------------------------------------------


class Appender:
    """A sealed file written one record at a time, each on disk (fsync) before `append` returns.

    Created exclusively (never over an existing file) and private (`mode`). A failed append leaves
    the file as it was before it (the partial record is truncated away; if even that fails, the
    next append truncates first), so what was appended stays readable whatever the disk does."""

    def __init__(self, path: Path, key: bytes, *, mode: int = 0o600) -> None:
        self.path = Path(path)
        self._cipher = _FileCipher.new(key)
        self._index = 0
        self._size = 0  # bytes known to be whole on disk
        self._torn = False  # a failed write may have left bytes after _size
        self.finished = False
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self._fd: int | None = os.open(self.path, flags, mode)
        try:
            self._write_at(0, self._cipher.header)
        except BaseException:
            self.close()
            self.path.unlink(missing_ok=True)
            raise

    @property
    def records(self) -> int:
        return self._index

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        self._append(data, final=False)

    def finish(self) -> None:
        """Close the stream with the final record: from now on a cut is detected as such."""
        self._append(b"", final=True)
        self.finished = True

    def _append(self, data: bytes, *, final: bool) -> None:
        if self.finished:
            raise ValueError(f"{self.path} is finished")
        if self._torn:
            self._cut_back()
        self._write_at(self._size, self._cipher.record(self._index, data, final))
        self._index += 1

    def _write_at(self, offset: int, blob: bytes) -> None:
        assert self._fd is not None, "the appender is closed"
        try:
            os.lseek(self._fd, offset, os.SEEK_SET)
            view = memoryview(blob)
            while view:
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(28, "No space left on device")
                view = view[written:]
            os.fsync(self._fd)
        except OSError:
            self._torn = True
            with contextlib.suppress(OSError):
                self._cut_back()
            raise
        self._size = offset + len(blob)

    def _cut_back(self) -> None:
        assert self._fd is not None, "the appender is closed"
        os.ftruncate(self._fd, self._size)
        os.fsync(self._fd)
        self._torn = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def write_file(path: Path, data: bytes | memoryview, key: bytes, *, mode: int = 0o600) -> Path:
    """Seal `data` into `path` all or nothing: a temporary file beside it, fsync'd, renamed over it
    (the folder synced). A failure (a full disk) leaves `path` as it was and no temporary file."""
    cipher = _FileCipher.new(key)
    return atomic_write_with(path, lambda fh: _write_records(fh, memoryview(data), cipher), mode=mode)


def _write_records(fh: IO[bytes], data: memoryview, cipher: _FileCipher) -> None:
    fh.write(cipher.header)
    starts = range(0, len(data), WHOLE_FILE_RECORD)
    last = max(len(starts) - 1, 0)
    for index, start in enumerate(starts or [0]):
        fh.write(cipher.record(index, data[start : start + WHOLE_FILE_RECORD], index == last))


# --- reading ------------------------------------------------------------------------------------


def iter_records(path: Path, key: bytes, *, unfinished: bool = False) -> Iterator[bytes]:
    """The plaintext of each record in order. A finished file must end with its final record and
    nothing after it. With `unfinished`, a stream without its final record is accepted and its
    torn last record (cut short, or never fully on disk) is dropped; damage anywhere else is still
    an error. Raises SealedFileError naming the file."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES and MAGIC.startswith(head[: len(MAGIC)]):
            if unfinished:
                return  # created, then killed before its header was whole: nothing was recorded
            raise SealedFileError(f"{path} is cut short (its header is incomplete)")
        if not head.startswith(FAMILY):
            raise SealedFileError(f"{path} is not a sealed Clarke file")
        if head[len(FAMILY)] != VERSION:
            raise SealedFileError(f"{path} was sealed by a newer Clarke (format {head[len(FAMILY)]})")
        cipher = _FileCipher(key, head[len(MAGIC) : len(MAGIC) + FILE_ID_BYTES])
        if cipher.header != head:
            raise SealedFileError(
                f"{path} does not open with this installation's key (sealed by another installation, "
                "or its header was altered)"
            )
        offset, index = HEADER_BYTES, 0
        while True:
            if offset == size:
                if unfinished:
                    return
                raise SealedFileError(f"{path} is cut short: its last part is missing")
            prefix = fh.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                if unfinished:
                    return
                raise SealedFileError(f"{path} is cut short in the middle of a part")
            (word,) = _PREFIX.unpack(prefix)
            final, length = bool(word & _FINAL), word & ~_FINAL
            if not NONCE_BYTES + TAG_BYTES <= length <= NONCE_BYTES + TAG_BYTES + MAX_RECORD:
                if unfinished and _only_zeros(fh):
                    return  # a tail the disk allocated but never wrote (power loss)
                raise SealedFileError(f"{path} is damaged (a part at byte {offset} has an impossible length)")
            end = offset + _PREFIX.size + length
            if end > size:
                if unfinished:
                    return
                raise SealedFileError(f"{path} is cut short in the middle of a part")
            body = fh.read(length)
            try:
                plaintext = cipher.open(index, body, final)
            except InvalidTag:
                if unfinished and end == size and not final:
                    return  # the last append, not wholly on disk when the machine stopped
                raise SealedFileError(
                    f"{path} is damaged or was altered (part {index} does not authenticate)"
                ) from None
            yield plaintext
            offset, index = end, index + 1
            if final:
                if offset != size:
                    raise SealedFileError(f"{path} has data after its end (altered)")
                return


def _only_zeros(fh: IO[bytes]) -> bool:
    while block := fh.read(1 << 16):
        if block.strip(b"\x00"):
            return False
    return True


def read_file(path: Path, key: bytes) -> bytes:
    """The whole plaintext of a finished sealed file."""
    return b"".join(iter_records(path, key))


def payload_size(path: Path) -> int:
    """Plaintext bytes in the whole records of a sealed file, from their lengths alone (no key, no
    authentication: for listing, e.g. how long an interrupted recording is)."""
    total = 0
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = HEADER_BYTES
        fh.seek(offset)
        while offset + _PREFIX.size <= size:
            (word,) = _PREFIX.unpack(fh.read(_PREFIX.size))
            length = word & ~_FINAL
            if length < NONCE_BYTES + TAG_BYTES or offset + _PREFIX.size + length > size:
                break
            total += length - NONCE_BYTES - TAG_BYTES
            offset += _PREFIX.size + length
            fh.seek(offset)
    return total


# --- with the keyring's key -------------------------------------------------------------------


def files_key(path: Path) -> bytes | None:
    """The key that seals files at `path`: open when the data folder it is in has been signed into."""
    return keyring.key_within(Path(path), PURPOSE)


def opening_key(path: Path, candidates: list[bytes]) -> bytes | None:
    """The key among `candidates` whose check matches the sealed file's header (None: none does)."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or not head.startswith(FAMILY):
        return candidates[0] if candidates else None  # not a whole header: the reader says why
    file_id = head[len(MAGIC) : len(MAGIC) + FILE_ID_BYTES]
    return next((k for k in candidates if _FileCipher(k, file_id).header == head), None)


def _current_or_raise(path: Path) -> bytes:
    """The key that seals a new file at `path` (the current data key's)."""
    key = files_key(path)
    if key is None:
        raise NoKey(f"{path} is encrypted: sign in to Clarke on this computer to open it")
    return key


def _key_or_raise(path: Path) -> bytes:
    """The key that opens `path`: the current one, or one a key rotation retired."""
    candidates = keyring.keys_within(Path(path), PURPOSE)
    if not candidates:
        raise NoKey(f"{path} is encrypted: sign in to Clarke on this computer to open it")
    return opening_key(Path(path), candidates) or candidates[0]


def read_bytes(path: Path) -> bytes:
    """A stored file's contents: decrypted in memory when it is sealed, as they are when it is not
    (a file from before accounts, or an installation without them)."""
    path = Path(path)
    if not is_sealed(path):
        return path.read_bytes()
    return read_file(path, _key_or_raise(path))


def write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Write `data` to `path` all or nothing: sealed when a key is open for its data folder (the
    return value says so), otherwise plaintext as before accounts."""
    key = files_key(path)
    if key is None:
        atomic_write(path, data, mode=mode)
        return False
    write_file(path, data, key, mode=mode)
    return True


class KeyringFiles:
    """Sealed files with the keyring's key for each path: what the session layer hands to the
    audio package (which may not import identity; see audio.sealing.SealedFiles)."""

    def sealing(self, path: Path) -> bool:
        return files_key(path) is not None

    def appender(self, path: Path) -> Appender:
        return Appender(path, _current_or_raise(path))

    def write(self, path: Path, data: bytes | memoryview) -> None:
        write_file(path, data, _current_or_raise(path))

    def read(self, path: Path) -> bytes:
        return read_bytes(path)

    def stream(self, path: Path) -> Iterator[bytes]:
        return iter_records(path, _key_or_raise(path), unfinished=True)

    def is_sealed(self, path: Path) -> bool:
        return is_sealed(path)

    def payload_size(self, path: Path) -> int:
        return payload_size(path)


FILES = KeyringFiles()
