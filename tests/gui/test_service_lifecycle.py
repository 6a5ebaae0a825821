"""ConsultationService's life cycle: a stopped recording is recorded (file, length, hash, audit), a change of
letter model in Settings takes effect at the next run, and every model is freed at shutdown."""

from __future__ import annotations

import time

import numpy as np
import pytest

from clarke_desktop.cancel import CancelToken
from clarke_desktop.schemas import Transcript

pytestmark = pytest.mark.gui


def test_a_stopped_recording_is_recorded_with_its_length_hash_and_audit(monkeypatch) -> None:
    from paced_stream import PacedTestStream

    import clarke_desktop.audio.devices as devices
    import clarke_desktop.audio.recorder as recorder
    from clarke_desktop.audio.recorder import Recorder
    from clarke_desktop.files import file_sha256
    from clarke_desktop.session.service import ConsultationService

    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(48_000 * 5) / 48_000)).astype(np.int16)

    class TestRecorder(Recorder):
        def __init__(self, out_dir, **kw):
            kw.pop("device", None)
            super().__init__(out_dir, samplerate=48_000,
                             stream_factory=lambda sr, ch, bs, cb: PacedTestStream(tone, sr, bs, cb), **kw)  # fmt: skip

    monkeypatch.setattr(devices, "choose_device", lambda *a, **k: None)
    monkeypatch.setattr(recorder, "Recorder", TestRecorder)
    backend = ConsultationService()
    try:
        cid = backend.start_consultation("pt-001")
        backend.confirm_consent(cid)
        session = backend.start_recording(cid, None)
        session.start()
        time.sleep(0.6)
        wav, duration, _live = session.stop()
        live = Transcript(text="Doctor: how are you?", origin="asr")
        assert backend.recording_stopped(cid, wav, live, CancelToken(), duration_s=duration) is live
        [audio] = backend._store.audio(cid)
        assert audio.path == str(wav) and audio.duration_s == pytest.approx(duration) and duration > 0.3
        assert audio.sha256 == file_sha256(wav)
        stopped = [e for e in backend._store.audit_entries(cid) if e.event == "recording_stopped"]
        assert len(stopped) == 1 and stopped[0].data["sha256"] == audio.sha256
    finally:
        backend.close()


def test_changing_the_letter_model_takes_effect_at_the_next_run_and_shutdown_frees_models() -> None:
    from clarke_desktop.llm import registry
    from clarke_desktop.session.service import ConsultationService

    backend = ConsultationService()
    try:
        first = backend.pipeline()
        registry.get_engine("letter_writer")  # the embedded model, really loaded
        assert registry.loaded_engines()
        assert backend.pipeline() is first  # nothing changed: kept
        settings = backend.settings()
        settings.llm_backend = "installed" if settings.llm_backend != "installed" else "embedded"
        backend.save_settings(settings)
        second = backend.pipeline()
        assert second is not first and registry.loaded_engines() == []
        registry.get_engine("letter_writer")
    finally:
        backend.close()
    assert registry.loaded_engines() == []


def test_the_backend_lists_and_recovers_an_interrupted_draft() -> None:
    from clarke_desktop.schemas import ConsultationStatus
    from clarke_desktop.session.service import ConsultationService

    backend = ConsultationService()
    try:
        cid = backend.start_consultation("pt-002")
        backend._store.set_status(cid, ConsultationStatus.PROCESSING)  # the app died while drafting
        listed = backend.interrupted_work()
        assert cid in [d["consultation_id"] for d in listed["drafts"]]
        recovered = backend.interrupted_work(recover=True)
        draft = next(d for d in recovered["drafts"] if d["consultation_id"] == cid)
        assert draft["recovered_status"] == "waiting"
        assert cid not in [d["consultation_id"] for d in backend.interrupted_work()["drafts"]]
    finally:
        backend.close()
