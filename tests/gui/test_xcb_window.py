"""The real window starts on the xcb platform under Xvfb (offscreen tests cannot prove this:
xcb needs its own system libraries, see KNOWLEDGE.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gui


@pytest.mark.skipif(
    shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (Debian package xvfb)"
)
def test_clarke_desktop_window_starts_on_xcb_under_xvfb(tmp_path):
    # First start, set up and signed in without a dialog (the documented non-interactive set-up).
    setup = tmp_path / "setup.json"
    setup.write_text(json.dumps({
        "admin": {"name": "it.admin", "display_name": "IT Admin", "password": "admin passphrase"},
        "clinicians": [{"name": "s.chen", "display_name": "Dr S. Chen", "registration": "GMC 7012345",
                        "password": "clinician passphrase"}],
        "recovery_key_file": str(tmp_path / "recovery.txt"),
    }))  # fmt: skip
    pw = tmp_path / "pw"
    pw.write_text("clinician passphrase\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "CLARKE_DATA_DIR": str(tmp_path / "data"),
           "CLARKE_SETUP_FILE": str(setup), "CLARKE_USER": "s.chen", "CLARKE_PASSWORD_FILE": str(pw)}  # fmt: skip
    env.pop("DISPLAY", None)
    proc = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1366x768x24",
            sys.executable,
            "-m",
            "clarke_desktop",
            "gui",
            "--quit-after",
            "2500",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "platform=xcb" in out, out
    assert "visible=True" in out and "exposed=True" in out, out
    # maximised on a 1366x768 screen: the window uses the whole screen
    size = out.split("size=")[1].split()[0]
    w, h = (int(x) for x in size.split("x"))
    assert w >= 1300 and h >= 700, out
    assert (tmp_path / "recovery.txt").stat().st_mode & 0o777 == 0o600
