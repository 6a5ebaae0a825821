"""`clarke-desktop record --patient ID --from-wav FILE`: a dictaphone recording kept exactly as a
microphone recording is: converted to 16 kHz WAV, sealed, hashed, audited under the signed-in
clinician; nothing stored without a sign-in or from a file that is not audio."""

from __future__ import annotations

import json
from pathlib import Path

import accounts
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.identity import sealed
from clarke_desktop.store import AppStore


@pytest.fixture
def data(data: Path) -> Path:
    """The conftest's private data folder, set up with accounts."""
    accounts.set_up(data)
    return data


def _wav(path: Path, seconds: float = 2.0, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.2 * np.sin(2 * np.pi * 220 * t), rate, subtype="PCM_16")
    return path


def test_a_dictaphone_file_is_stored_as_the_patients_recording(data: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(accounts.CLINICIAN_PASSWORD + "\n")
    source = _wav(tmp_path / "dictaphone.wav")
    result = CliRunner().invoke(cli, ["record", "--patient", "pt-001", "--from-wav", str(source), "--json",
                                      "--user", accounts.CLINICIAN, "--password-file", str(pw)])  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)
    assert stored["sealed"] and abs(stored["duration_s"] - 2.0) < 0.01
    path = Path(stored["path"])
    assert path.parent == data / "recordings" and b"RIFF" not in path.read_bytes()[:64]
    data_16k, rate = sf.read(__import__("io").BytesIO(sealed.read_bytes(path)))
    assert rate == 16_000 and len(data_16k) == 32_000
    with AppStore() as store:
        events = [(e.event, e.actor) for e in store.audit_entries(stored["consultation_id"])]
        (audio,) = store.audio(stored["consultation_id"])
    assert ("consent_confirmed", accounts.CLINICIAN_NAME) in events
    assert ("recording_started", accounts.CLINICIAN_NAME) in events and ("recording_stopped", accounts.CLINICIAN_NAME) in events
    assert audio.source == "recording" and audio.sha256 == stored["sha256"]
    assert source.exists()  # the original is left where it was


def test_nothing_is_stored_without_a_sign_in_or_from_a_non_audio_file(data: Path, tmp_path: Path) -> None:
    source = _wav(tmp_path / "dictaphone.wav")
    refused = CliRunner().invoke(cli, ["record", "--patient", "pt-001", "--from-wav", str(source)])
    assert refused.exit_code != 0 and "not signed in" in refused.output
    pw = tmp_path / "pw"
    pw.write_text(accounts.CLINICIAN_PASSWORD + "\n")
    junk = tmp_path / "notes.wav"
    junk.write_text("not audio at all " * 50)
    bad = CliRunner().invoke(cli, ["record", "--patient", "pt-001", "--from-wav", str(junk),
                                   "--user", accounts.CLINICIAN, "--password-file", str(pw)])  # fmt: skip
    assert bad.exit_code != 0 and "not a readable audio file" in bad.output
    assert not (data / "recordings").exists() or not list((data / "recordings").iterdir())
