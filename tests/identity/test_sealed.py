"""The sealed-file format: authenticated AES-256-GCM records that open only with their key, in their
order, in their file; a finished file cut short is found; an unfinished stream (a crash) gives
every whole record back and drops only its torn end; a full disk loses nothing already written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from clarke_desktop.identity import keyring, sealed
from clarke_desktop.identity.sealed import Appender, SealedFileError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _stream(path: Path, parts: list[bytes], *, finish: bool = True) -> Path:
    with Appender(path, KEY) as appender:
        for part in parts:
            appender.append(part)
        if finish:
            appender.finish()
    return path


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record, read from the length prefixes."""
    out, data, offset = [], path.read_bytes(), sealed.HEADER_BYTES
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big") & ~(1 << 31)
        out.append((offset, 4 + length))
        offset += 4 + length
    return out


PARTS = [bytes([i]) * (1000 + i) for i in range(5)]


def test_whole_files_and_streams_round_trip_and_hold_no_plaintext(tmp_path: Path) -> None:
    pdf = b"%PDF-1.4 " + os.urandom(3 * sealed.WHOLE_FILE_RECORD + 7)
    sealed.write_file(tmp_path / "letter.pdf", pdf, KEY)
    raw = (tmp_path / "letter.pdf").read_bytes()
    assert raw.startswith(sealed.MAGIC) and b"%PDF" not in raw and pdf[100:164] not in raw
    assert sealed.read_file(tmp_path / "letter.pdf", KEY) == pdf
    assert sealed.payload_size(tmp_path / "letter.pdf") == len(pdf)
    assert oct((tmp_path / "letter.pdf").stat().st_mode & 0o777) == "0o600"
    assert list(tmp_path.glob(".*.tmp")) == []

    stream = _stream(tmp_path / "audio.pcm", PARTS)
    assert list(sealed.iter_records(stream, KEY)) == [*PARTS, b""]
    assert sealed.read_file(stream, KEY) == b"".join(PARTS)
    sealed.write_file(tmp_path / "empty", b"", KEY)
    assert sealed.read_file(tmp_path / "empty", KEY) == b""


def test_a_wrong_key_is_named_as_such(tmp_path: Path) -> None:
    sealed.write_file(tmp_path / "f", b"secret", KEY)
    with pytest.raises(SealedFileError, match="does not open with this installation's key"):
        sealed.read_file(tmp_path / "f", OTHER_KEY)
    (tmp_path / "g").write_bytes(b"%PDF-1.4 plain")
    with pytest.raises(SealedFileError, match="not a sealed Clarke file"):
        sealed.read_file(tmp_path / "g", KEY)


def test_reordered_dropped_spliced_or_altered_records_do_not_open(tmp_path: Path) -> None:
    path = _stream(tmp_path / "a", PARTS)
    data = path.read_bytes()
    (r0, r1, r2, *_rest) = _records(path)
    head = data[: sealed.HEADER_BYTES]

    def chunk(r: tuple[int, int]) -> bytes:
        return data[r[0] : r[0] + r[1]]

    swapped = head + chunk(r1) + chunk(r0) + data[r2[0] :]
    dropped = head + chunk(r0) + data[r2[0] :]
    other = _stream(tmp_path / "b", PARTS).read_bytes()
    spliced = head + other[_records(tmp_path / "b")[0][0] :]
    flipped = bytearray(data)
    flipped[r1[0] + 40] ^= 1
    for name, damaged in (("swapped", swapped), ("dropped", dropped), ("spliced", spliced),
                          ("flipped", bytes(flipped))):  # fmt: skip
        (tmp_path / name).write_bytes(damaged)
        for unfinished in (False, True):  # damage before the end is an error even in recovery
            with pytest.raises(SealedFileError):
                list(sealed.iter_records(tmp_path / name, KEY, unfinished=unfinished))


def test_a_finished_file_cut_short_or_extended_is_found(tmp_path: Path) -> None:
    path = _stream(tmp_path / "a", PARTS)
    data = path.read_bytes()
    last = _records(path)[-1]
    for cut in (last[0], last[0] + 3, len(data) - 1):  # the final record gone, or torn
        (tmp_path / "cut").write_bytes(data[:cut])
        with pytest.raises(SealedFileError, match="cut short"):
            sealed.read_file(tmp_path / "cut", KEY)
    (tmp_path / "longer").write_bytes(data + b"\0" * 40)
    with pytest.raises(SealedFileError, match="after its end"):
        sealed.read_file(tmp_path / "longer", KEY)


def test_recovery_keeps_every_whole_record_and_drops_only_a_torn_last_one(tmp_path: Path) -> None:
    path = _stream(tmp_path / "a", PARTS, finish=False)
    data = path.read_bytes()
    last = _records(path)[-1]
    for cut in range(last[0], len(data)):  # a kill at every byte of the last append
        (tmp_path / "cut").write_bytes(data[:cut])
        assert list(sealed.iter_records(tmp_path / "cut", KEY, unfinished=True)) == PARTS[:-1]
        with pytest.raises(SealedFileError):
            sealed.read_file(tmp_path / "cut", KEY)
    assert list(sealed.iter_records(path, KEY, unfinished=True)) == PARTS
    for cut in range(sealed.HEADER_BYTES):  # killed while the header was written: nothing recorded
        (tmp_path / "cut").write_bytes(data[:cut])
        assert list(sealed.iter_records(tmp_path / "cut", KEY, unfinished=True)) == []
    # A last record whose length reached the disk but whose bytes did not (power loss): zeros.
    (tmp_path / "zeros").write_bytes(data[: last[0] + 4] + b"\0" * (last[1] - 4))
    assert list(sealed.iter_records(tmp_path / "zeros", KEY, unfinished=True)) == PARTS[:-1]
    (tmp_path / "zeros").write_bytes(data + b"\0" * 500)
    assert list(sealed.iter_records(tmp_path / "zeros", KEY, unfinished=True)) == PARTS


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, appender: Appender, budget: int) -> list[int]:
    """`budget` more bytes fit on the appender's disk; then writes fail with ENOSPC (a short write
    first, as a real file system does). Returns a one-item list: set [0] to free space again."""
    real_write = os.write
    left = [budget]

    def write(fd: int, data: bytes | memoryview) -> int:
        if fd != appender._fd or left[0] >= 1 << 40:
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data)[: left[0]])
        left[0] -= written
        return written

    monkeypatch.setattr(sealed.os, "write", write)
    return left


def test_a_full_disk_during_an_append_loses_nothing_already_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "capture.pcm"
    appender = Appender(path, KEY)
    for part in PARTS[:3]:
        appender.append(part)
    saved = path.stat().st_size
    space = _disk_full_after(monkeypatch, appender, budget=700)  # part of the next record fits
    with pytest.raises(OSError) as failed:
        appender.append(PARTS[3])
    assert failed.value.errno == errno.ENOSPC
    assert path.stat().st_size == saved  # the torn record was cut back off
    assert list(sealed.iter_records(path, KEY, unfinished=True)) == PARTS[:3]
    with pytest.raises(OSError):
        appender.finish()  # still full
    space[0] = 1 << 40  # space freed: the stream goes on from the last whole record
    appender.append(PARTS[3])
    appender.finish()
    appender.close()
    assert sealed.read_file(path, KEY) == b"".join(PARTS[:4])


def test_when_even_the_cut_back_fails_the_next_append_cuts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "capture.pcm"
    appender = Appender(path, KEY)
    appender.append(PARTS[0])
    space = _disk_full_after(monkeypatch, appender, budget=300)
    real_truncate = os.ftruncate

    def broken_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sealed.os, "ftruncate", broken_truncate)
    with pytest.raises(OSError):
        appender.append(PARTS[1])
    assert path.stat().st_size > sealed.HEADER_BYTES + _records(path)[0][1]  # torn bytes left behind
    assert list(sealed.iter_records(path, KEY, unfinished=True)) == PARTS[:1]  # a crash now: dropped
    monkeypatch.setattr(sealed.os, "ftruncate", real_truncate)
    space[0] = 1 << 40
    appender.append(PARTS[1])
    appender.finish()
    appender.close()
    assert sealed.read_file(path, KEY) == PARTS[0] + PARTS[1]


def test_a_full_disk_during_a_whole_file_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "letter.pdf"
    sealed.write_file(target, b"%PDF-1.4 version one", KEY)
    before = target.read_bytes()
    real = sealed._write_records

    def full(fh, data, cipher):  # noqa: ANN001 - the private helper's own arguments
        fh.write(cipher.header)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sealed, "_write_records", full)
    with pytest.raises(OSError):
        sealed.write_file(target, b"%PDF-1.4 version two" * 1000, KEY)
    assert target.read_bytes() == before and sealed.read_file(target, KEY) == b"%PDF-1.4 version one"
    assert [p.name for p in tmp_path.iterdir()] == ["letter.pdf"]  # no temporary file left
    monkeypatch.setattr(sealed, "_write_records", real)


def test_the_keyring_seals_inside_a_signed_in_data_folder_only(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "elsewhere"
    keyring.remember(data, os.urandom(32))
    try:
        assert sealed.write_bytes(data / "exports" / "a.pdf", b"%PDF-1.4 a") is True
        assert sealed.is_sealed(data / "exports" / "a.pdf")
        assert sealed.read_bytes(data / "exports" / "a.pdf") == b"%PDF-1.4 a"
        assert sealed.write_bytes(outside / "b.pdf", b"%PDF-1.4 b") is False
        assert (outside / "b.pdf").read_bytes() == b"%PDF-1.4 b" == sealed.read_bytes(outside / "b.pdf")
    finally:
        keyring.forget(data)
    with pytest.raises(sealed.NoKey, match="sign in"):  # a new process, nobody signed in
        sealed.read_bytes(data / "exports" / "a.pdf")


def test_temporaries_left_by_a_killed_write_are_removed_at_start_and_live_ones_kept(tmp_path: Path) -> None:
    import time

    from clarke_desktop.files import remove_stale_temporaries

    exports = tmp_path / "exports"
    exports.mkdir()
    target = exports / "letter-v1.pdf"
    target.write_bytes(b"sealed letter")
    stale = exports / ".letter-v2.pdf.abc123.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"half a sealed letter")
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    live = exports / ".letter-v3.pdf.def456.tmp"  # another process writing right now
    live.write_bytes(b"being written")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and target.read_bytes() == b"sealed letter"
