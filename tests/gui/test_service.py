"""ConsultationService against the real core without the language model: the bundled FHIR store, the
app store, model verification, settings and doctor checks."""

from __future__ import annotations

import pytest

from clarke_desktop.cancel import CancelToken
from clarke_desktop.schemas import ConsultationStatus

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def backend():
    from clarke_desktop.session.service import ConsultationService

    b = ConsultationService()
    yield b
    b.close()


def test_todays_clinic_comes_from_the_fhir_store(backend):
    clinician, patients = backend.clinic()  # seeds the store on first use
    assert clinician.name
    ids = [p.id for p in patients]
    assert "pt-001" in ids
    thompson = next(p for p in patients if p.id == "pt-001")
    assert "Thompson" in thompson.name and len(thompson.nhs_number.replace(" ", "")) == 10


def test_consultation_is_reused_until_signed(backend):
    cid = backend.start_consultation("pt-002")
    assert backend.start_consultation("pt-002") == cid
    assert backend.statuses()["pt-002"] == ConsultationStatus.WAITING


def test_patient_context_shows_the_allergy_and_labs(backend):
    backend.clinic()
    ctx = backend.patient_context("pt-001", CancelToken())
    assert any("penicillin" in a.substance.lower() for a in ctx.allergies)
    assert any(lab.previous_value for lab in ctx.recent_labs)  # a trend needs a previous value


def test_status_calls_never_raise_on_a_bare_machine(backend):
    status = backend.model_status()
    assert status.kind in ("demo", "medgemma", "missing")
    assert any(m.role == "Embedded default" for m in status.models)
    mics = backend.microphones()
    assert mics.available or mics.message  # no microphone is a normal state, explained
    asr = backend.asr_status()
    assert asr.installed or "not installed" in asr.message


def test_demo_consultation_files_are_found(backend):
    path = backend.demo_transcript_path("pt-001")
    assert path is not None and path.read_text(encoding="utf-8").startswith("Doctor:")
    assert backend.demo_transcript_path("no-such-patient") is None


def test_settings_round_trip(backend):
    before = backend.settings()
    changed = before.__class__(**{**before.__dict__, "clinician_title": "Consultant Diabetologist"})
    backend.save_settings(changed)
    try:
        from clarke_desktop.config import load_settings

        assert load_settings().clinician.title == "Consultant Diabetologist"
        assert backend.settings().clinician_title == "Consultant Diabetologist"
        assert backend.settings().letterhead == before.letterhead  # letterhead lines survive
    finally:
        backend.save_settings(before)


def test_diagnostics_are_the_doctor_checks(backend):
    checks = backend.diagnostics()
    names = [c.name for c in checks]
    assert "Model files" in names
    assert all(c.detail for c in checks)


def test_start_up_applies_audio_retention(monkeypatch):
    import clarke_desktop.pipeline.finalise as finalise
    from clarke_desktop.session.service import ConsultationService

    calls = []
    monkeypatch.setattr(finalise, "apply_retention", lambda store, settings: calls.append(settings) or [])
    ConsultationService()
    assert len(calls) == 1 and calls[0].audio.retention_days == 28
