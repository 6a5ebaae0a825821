"""Session-wide random-weight MedASR snapshots, exported once through the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from builders import LOCAL_REVISION, build_snapshot  # noqa: E402

from clarke_desktop.asr.features import SAMPLE_RATE  # noqa: E402


def _export(snapshot: Path, out: Path, *precisions: str) -> Path:
    from clarke_desktop.cli import cli

    args = ["models", "export-medasr", "--source", str(snapshot), "--out", str(out)]
    for p in precisions:
        args += ["--precision", p]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def torch_modules():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return torch, transformers


@pytest.fixture(scope="session")
def calibration(speech) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [speech, (0.1 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)]


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory, torch_modules, calibration) -> Path:
    return build_snapshot(
        tmp_path_factory.mktemp("snap") / "tiny", tiny=True, seed=0, calibration=calibration
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_snapshot) -> Path:
    return _export(tiny_snapshot, tmp_path_factory.mktemp("models") / "tiny", "fp32", "fp16", "int8")


@pytest.fixture(scope="session")
def local_snapshot(tmp_path_factory, torch_modules, calibration) -> Path:
    # Laid out like the Hugging Face cache (snapshots/<commit>/) so the export records the revision.
    out = tmp_path_factory.mktemp("snap") / "snapshots" / LOCAL_REVISION
    return build_snapshot(out, tiny=True, seed=1, local_only=True, calibration=calibration)


@pytest.fixture(scope="session")
def local_model(tmp_path_factory, local_snapshot) -> Path:
    return _export(local_snapshot, tmp_path_factory.mktemp("models") / "local", "fp32")


@pytest.fixture(scope="session")
def torch_model(tiny_snapshot, torch_modules):
    _, transformers = torch_modules
    return transformers.LasrForCTC.from_pretrained(str(tiny_snapshot)).eval()


def _espeak(text: str, path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    from clarke_desktop.audio.files import load_audio

    return load_audio(path)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> np.ndarray:
    """About 6 s of synthetic clinical dictation at 16 kHz (espeak-ng renders 22.05 kHz)."""
    text = (
        "The patient has type two diabetes. Continue gliclazide eighty milligrams twice daily and metformin."
    )
    return _espeak(text, tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory, speech) -> np.ndarray:
    """About 40 s: speech, noise and silence, long enough for several windows of a small plan."""
    rng = np.random.default_rng(7)
    noise = (0.05 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    silence = np.zeros(SAMPLE_RATE, np.float32)
    return np.concatenate([speech, noise, speech[::-1].copy(), silence, speech, noise, speech, speech])
