"""The real window starts on the xcb platform under Xvfb (offscreen tests cannot prove this:
xcb needs its own system libraries, see KNOWLEDGE.md)."""

from __future__ import annotations

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
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "CLARKE_DATA_DIR": str(tmp_path / "data")}
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
