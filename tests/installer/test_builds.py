"""Opt-in: build the PyInstaller bundle and the .deb, install it with dpkg, and run what was built.

Heavy (a ~530 MB bundle, minutes on 2 cores), so skipped unless CLARKE_BUILD_TESTS=1.
CLARKE_BUNDLE_DIR=dist/clarke-desktop reuses a bundle built earlier instead of building one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CLARKE_BUILD_TESTS") != "1", reason="set CLARKE_BUILD_TESTS=1 to build"
    ),
]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800, **kwargs)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("CLARKE_BUNDLE_DIR"):
        return Path(os.environ["CLARKE_BUNDLE_DIR"]).resolve()
    out = tmp_path_factory.mktemp("bundle")
    env = {**os.environ, "CLARKE_DIST_DIR": str(out / "dist"), "CLARKE_BUILD_DIR": str(out / "work")}
    proc = _run(["bash", "installer/build_bundle.sh"], env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out / "dist" / "clarke-desktop"


def test_bundle_runs_version_doctor_and_gui(bundle: Path) -> None:
    proc = _run(["bash", "installer/smoke_test_bundle.sh", str(bundle / "clarke-desktop")])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "smoke: all passed" in proc.stderr
    libs = {p.name for p in (bundle / "_internal").rglob("libllama*")}
    assert libs, "llama.cpp shared library not collected"


@pytest.mark.skipif(os.name != "posix" or shutil.which("dpkg") is None, reason="needs dpkg")
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() != 0, reason="dpkg -i needs root")
def test_deb_installs_runs_and_removes_cleanly(bundle: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CLARKE_DEB_OUT_DIR": str(tmp_path), "CLARKE_DEB_BUILD_DIR": str(tmp_path / "root")}
    built = _run(["bash", "installer/linux/build_deb.sh", str(bundle)], env=env)
    assert built.returncode == 0, built.stderr[-4000:]
    deb = Path(built.stdout.strip().splitlines()[-1])
    info = _run(["dpkg-deb", "--field", str(deb), "Depends"])
    assert "libportaudio2" in info.stdout and "libxcb-cursor0" in info.stdout
    listing = _run(["dpkg-deb", "--contents", str(deb)]).stdout
    assert "./opt/clarke-desktop/clarke-desktop" in listing
    assert "./usr/share/applications/clarke-desktop.desktop" in listing

    data = tmp_path / "user-data"
    data.mkdir()
    (data / "keep.txt").write_text("patient data stays")
    installed = _run(["dpkg", "-i", str(deb)])
    assert installed.returncode == 0, installed.stderr
    try:
        version = _run(["/usr/bin/clarke-desktop", "--version"])
        assert version.returncode == 0 and "version" in version.stdout
        doctor = _run(
            ["/usr/bin/clarke-desktop", "doctor", "--json"], env={**os.environ, "CLARKE_DATA_DIR": str(data)}
        )
        assert json.loads(doctor.stdout)["checks"], doctor.stderr
        smoke = _run(["bash", "installer/smoke_test_bundle.sh", "/usr/bin/clarke-desktop"])
        assert smoke.returncode == 0, smoke.stderr[-4000:]
        assert oct(Path("/opt/clarke-desktop/clarke-desktop").stat().st_mode & 0o777) == "0o755"
    finally:
        removed = _run(["dpkg", "--purge", "clarke-desktop"])
    assert removed.returncode == 0, removed.stderr
    assert not Path("/opt/clarke-desktop").exists() and not Path("/usr/bin/clarke-desktop").exists()
    assert (data / "keep.txt").read_text() == "patient data stays"
