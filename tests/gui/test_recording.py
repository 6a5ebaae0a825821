"""Record, pause, resume and stop through the window: the core Recorder (crash-safe writer,
level meter) with a paced test stream in place of PortAudio; the GUI polls it from a timer."""

from __future__ import annotations

import numpy as np
import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from clarke_desktop.schemas import Transcript
from clarke_desktop.session.recording import RecordingSession
from clarke_desktop.session.views import AsrStatus, MicDevice, MicStatus

pytestmark = pytest.mark.gui


class MicBackend(FakeBackend):
    def __init__(self, out_dir):
        super().__init__()
        self.out_dir = out_dir
        self.consented: list[str] = []

    def microphones(self):
        return MicStatus([MicDevice("Test microphone", "ALSA", True)])

    def asr_status(self):
        return AsrStatus(True, "test")

    def confirm_consent(self, consultation_id):
        self.consented.append(consultation_id)

    def start_recording(self, consultation_id, device):
        from paced_stream import PacedTestStream

        from clarke_desktop.audio.recorder import Recorder

        t = np.arange(48_000 * 20) / 48_000
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)

        def make(on_level, on_audio):
            return Recorder(
                self.out_dir,
                consultation_id=consultation_id,
                samplerate=48_000,
                stream_factory=lambda sr, ch, bs, cb: PacedTestStream(tone, sr, bs, cb),
                on_level=on_level,
                on_audio=on_audio,
            )

        self._log("start_recording")
        return RecordingSession(make, None)

    def recording_stopped(self, consultation_id, wav_path, live, cancel, *, duration_s=0.0):
        self._log("recording_stopped")
        self.wav = wav_path
        self.duration_s = duration_s
        return Transcript(text="Transcribed consultation.", origin="asr", duration_s=1.0)


def test_record_pause_resume_stop(styled_app, qtbot, tmp_path, monkeypatch):
    from clarke_desktop.gui.app import build_window

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    backend = MicBackend(tmp_path)
    w = build_window(backend)
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
        w.flow.open_patient("pt-001")
        qtbot.waitUntil(lambda: w.patient_screen.start_button.isEnabled(), timeout=5000)
        w.flow.begin_consultation()
        c = w.consultation
        qtbot.waitUntil(lambda: c.record_button.isEnabled(), timeout=5000)
        assert w.mic_badge.text().startswith("Mic: Test microphone")
        qtbot.keyClick(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: c.state == "recording" or bool(warnings), timeout=5000)
        assert not warnings
        assert backend.consented == ["cons-pt-001"]  # consent confirmed before capture
        qtbot.waitUntil(lambda: c.level.value() > 50, timeout=20000)  # a -10 dBFS tone
        qtbot.waitUntil(lambda: c.timer.text() >= "00:01", timeout=30000)
        assert not c.generate_button.isEnabled()
        qtbot.keyClick(w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        assert c.state == "paused" and c.record_button.text().endswith("Resume")
        qtbot.wait(500)  # blocks captured before the pause may still be on their way to disk
        paused_at = w.flow.recording.elapsed_s
        qtbot.wait(600)
        assert w.flow.recording.elapsed_s - paused_at < 0.15  # nothing captured while paused
        qtbot.mouseClick(c.record_button, Qt.MouseButton.LeftButton)
        assert c.state == "recording"
        qtbot.keyClick(w, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: c.transcript.toPlainText() == "Transcribed consultation.", timeout=10000)
        assert w.flow.recording is None and c.state == "stopped"
        import soundfile

        info = soundfile.info(str(backend.wav))  # a real WAV with what was recorded, pause excluded
        assert info.duration >= 1.0, info
        assert backend.duration_s == pytest.approx(info.duration, abs=0.1)  # the length reaches the backend
        assert c.generate_button.isEnabled()
    finally:
        w.runner.shutdown()
