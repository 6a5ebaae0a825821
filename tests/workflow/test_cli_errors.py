"""run-consultation fails early and clearly on bad input and missing models (no LLM needed)."""

from __future__ import annotations

from pathlib import Path

import accounts
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.store import AppStore


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLARKE_MODELS_DIR", str(tmp_path / "no-models"))
    accounts.set_up(tmp_path / "data")
    accounts.sign_in_env(monkeypatch, tmp_path)
    return tmp_path


def _run(*args: str):
    return CliRunner().invoke(
        cli,
        ["run-consultation", "--patient", "pt-001", "--sign-off", "Dr S. Chen", *args],
        catch_exceptions=False,
    )


def test_needs_exactly_one_input(env: Path) -> None:
    result = _run("--out", str(env / "out"))
    assert result.exit_code == 2 and "exactly one of --audio FILE or --transcript FILE" in result.output


def test_transcript_that_is_not_utf8_is_named(env: Path) -> None:
    bad = env / "visit.txt"
    bad.write_bytes("Caf\xe9 visit".encode("latin-1"))
    result = _run("--transcript", str(bad), "--out", str(env / "out"))
    assert result.exit_code == 1 and "visit.txt is not UTF-8" in result.output


def test_audio_without_speech_model_asks_for_a_transcript(env: Path) -> None:
    wav = env / "visit.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16000 * 3) / 7)).astype(np.float32), 16000)
    result = _run("--audio", str(wav), "--out", str(env / "out"))
    assert result.exit_code == 2, result.output
    assert "not installed" in result.output and "--transcript FILE" in result.output
    with AppStore() as store:
        (record,) = store.consultations()
        assert [a.path for a in store.audio(record.id)] == [str(wav)]
        assert store.audit_entries(record.id)[-1].event == "pipeline_failed"


def test_corrupted_audio_is_named(env: Path) -> None:
    bad = env / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 50)
    result = _run("--audio", str(bad), "--out", str(env / "out"))
    assert result.exit_code == 1
    assert "broken.wav" in result.output and "Re-record" in result.output


def test_a_transcript_file_far_too_large_is_refused_by_name(env: Path) -> None:
    big = env / "huge.txt"
    big.write_bytes(b"Patient: fine. " * (6 * 1024 * 1024 // 15 + 1))
    result = _run("--transcript", str(big), "--out", str(env / "out"))
    assert result.exit_code != 0 and "huge.txt" in result.output and "MB" in result.output
    assert not (env / "out").exists()
