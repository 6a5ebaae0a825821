"""The app ships a Windows installer: nothing it imports may need a POSIX-only module, and no
format string may use glibc-only flags."""

from __future__ import annotations

import importlib
import re
import sys
from datetime import date
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clarke_desktop"


def test_the_audio_modules_import_without_fcntl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m.startswith(("clarke_desktop.audio", "filelock"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: importing it fails
    recorder = importlib.import_module("clarke_desktop.audio.recorder")
    recovery = importlib.import_module("clarke_desktop.audio.recovery")
    sidecar = importlib.import_module("clarke_desktop.audio.sidecar")
    assert recorder.Recorder and recovery.find_orphans
    lock = sidecar.RecordingLock(tmp_path / "r.json")
    lock.acquire()
    lock.release()


def test_no_glibc_only_strftime_flags_in_the_package() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"%-[a-zA-Z]", line)
    ]
    assert offenders == []


def test_the_letter_date_is_written_without_a_leading_zero() -> None:
    from clarke_desktop.letters.writer import _uk_long_date

    assert _uk_long_date(date(2026, 12, 7)) == "7 December 2026"


def test_the_data_folder_is_restricted_on_windows_with_icacls(monkeypatch, tmp_path) -> None:
    """Not runnable here (no Windows): the call is built and made once per folder, with the user
    and SYSTEM only and inheritance removed."""
    import subprocess

    from clarke_desktop import paths

    calls = []
    monkeypatch.setattr(paths.os, "name", "nt")
    monkeypatch.setenv("USERNAME", "schen")
    monkeypatch.setenv("USERDOMAIN", "NHSTRUST")
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", "")
    )
    paths._restrict_acl.cache_clear()
    folder = tmp_path / "data"
    paths._ensure_private_dir(folder)
    paths._ensure_private_dir(folder)
    assert calls == [["icacls", str(folder.resolve()), "/inheritance:r", "/grant:r", "NHSTRUST\\schen:(OI)(CI)F",
                      "/grant:r", "*S-1-5-18:(OI)(CI)F"]]  # fmt: skip
    paths._restrict_acl.cache_clear()
