"""`clarke-desktop recover`: interrupted drafts and a recording whose process was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import workflow_samples as samples
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.schemas import ConsultationStatus
from clarke_desktop.store import AppStore

RECORDING = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from clarke_desktop.audio.recorder import Recorder
    from paced_stream import PacedTestStream
    from clarke_desktop import paths

    tone = (8000 * np.sin(np.arange(48000 * 30) * 2 * np.pi * 440 / 48000)).astype(np.int16)
    rec = Recorder(
        paths.recordings_dir(),
        consultation_id=sys.argv[1],
        stream_factory=lambda sr, ch, bs, cb: PacedTestStream(tone, sr, bs, cb),
        samplerate=48000,
    )
    rec.start()
    print("recording", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_recover_lists_then_settles_drafts_and_recordings(data_dir: Path) -> None:
    with AppStore() as store:
        drafted = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_generated_letter(drafted, samples.document(drafted))
        store.edit_section(drafted, "plan", "edited before the crash")
        store.set_status(drafted, ConsultationStatus.PROCESSING)
        recording = store.create_consultation("pt-002", clinician="Dr S. Chen").id
        store.confirm_consent(recording, "Dr S. Chen")
        store.set_status(recording, ConsultationStatus.RECORDING)

    proc = subprocess.Popen(
        [sys.executable, "-c", RECORDING.format(tests=str(Path(__file__).resolve().parents[1])), recording],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLARKE_DATA_DIR": str(data_dir)},
    )
    assert proc.stdout.readline().strip() == "recording"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    runner = CliRunner()
    listed = runner.invoke(cli, ["recover", "--json"])
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    by_id = {d["consultation_id"]: d for d in report["drafts"]}
    assert by_id[drafted]["letter_version"] == 2 and by_id[recording]["letter_version"] is None
    assert [r["consultation_id"] for r in report["recordings"]] == [recording]
    assert report["recordings"][0]["duration_s"] > 0.5

    applied = runner.invoke(cli, ["recover", "--apply", "--json"])
    assert applied.exit_code == 0, applied.output
    report = json.loads(applied.output)
    wav = Path(report["recordings"][0]["wav"])
    assert wav.exists()
    with AppStore() as store:
        assert store.consultation(drafted).status == ConsultationStatus.REVIEW
        assert store.latest_letter(drafted).document.sections[2].content == "edited before the crash"
        assert store.consultation(recording).status == ConsultationStatus.WAITING
        assert [a.path for a in store.audio(recording)] == [str(wav)]
        assert store.verify_audit().ok
    again = runner.invoke(cli, ["recover", "--json"])
    assert json.loads(again.output)["recordings"] == []
