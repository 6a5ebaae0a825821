"""The window's own logic, driven through its controls with an in-memory backend
(the real core is driven in test_full_flow.py)."""

from __future__ import annotations

import threading

import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt

from clarke_desktop.gui.screens.patient import out_of_range, trend_text
from clarke_desktop.schemas import LabResult, SourceRef

pytestmark = pytest.mark.gui


@pytest.fixture
def window(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window

    backend = FakeBackend()
    w = build_window(backend)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    yield w
    w.runner.shutdown()


def _to_review(w, qtbot):
    qtbot.mouseClick(w.dashboard.rows["pt-001"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.patient_screen.start_button.isEnabled(), timeout=5000)
    qtbot.mouseClick(w.patient_screen.start_button, Qt.MouseButton.LeftButton)
    assert w.current_page() == "consultation"
    w.consultation.transcript.setPlainText("Doctor: how are the sugars? Patient: higher.")
    qtbot.mouseClick(w.consultation.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.review.document is not None, timeout=10000)


def test_dashboard_lists_clinic_with_status_and_clinician(window):
    assert window.dashboard.rows["pt-001"].status_badge.text() == "Waiting"
    assert "Dr Sarah Chen" in window.dashboard.subtitle.text()
    assert window.model_badge.text() == "Demo model"
    assert window.demo_banner.isVisibleTo(window)
    assert window.mic_badge.text() == "No microphone"


def test_allergies_shown_in_red_banner(window, qtbot):
    qtbot.keyClick(window.dashboard.rows["pt-001"], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.patient_screen.context is not None, timeout=5000)
    from clarke_desktop.gui.screens.patient import AllergyBanner

    banners = window.patient_screen.findChildren(AllergyBanner)
    assert banners and banners[0].objectName() == "allergyBanner"
    assert "Penicillin" in banners[0].accessibleName()


def test_no_microphone_and_no_asr_are_normal_states(window, qtbot):
    qtbot.keyClick(window.dashboard.rows["pt-001"], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.patient_screen.start_button.isEnabled(), timeout=5000)
    window.flow.begin_consultation()
    c = window.consultation
    assert not c.record_button.isEnabled()
    assert not c.import_button.isEnabled()  # no ASR: importing audio cannot transcribe
    assert c.demo_button.isEnabled()
    assert not c.generate_button.isEnabled()  # nothing to write from yet
    c.transcript.setPlainText("typed transcript")
    assert c.generate_button.isEnabled()


def test_sign_off_is_gated_on_discrepancies_and_saves_edits(window, qtbot):
    backend: FakeBackend = window.backend
    _to_review(window, qtbot)
    r = window.review
    assert not r.sign_button.isEnabled()
    assert "discrepancies to resolve" in r.sign_button.toolTip()
    # edit a section: autosaved after the debounce, off the GUI thread
    r.cards["history"].editor.setPlainText("HbA1c 55 mmol/mol, up from 48.")
    qtbot.waitUntil(lambda: backend.saved.get("history") == "HbA1c 55 mmol/mol, up from 48.", timeout=5000)
    # regenerate another section with an instruction
    r.cards["plan"].instruction.setText("shorter")
    qtbot.mouseClick(r.cards["plan"].regen_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.cards["plan"].text() == "Rewritten: shorter", timeout=5000)
    # an allergy conflict is dismissed only for a specific reason: free text alone is not enough
    item = r.items["d1"]
    assert not item.dismiss_button.isEnabled()
    item.reason.setText("confirmed with patient: rash as a child, not an allergy")
    assert not item.dismiss_button.isEnabled() and item.why is not None
    item.why.setCurrentIndex(4)  # "Not a true allergy ..."
    assert item.dismiss_button.isEnabled()
    item.dismiss_button.setFocus()
    qtbot.mouseClick(item.dismiss_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.items["d1"].d.resolution is not None, timeout=5000)
    assert backend.resolved["d1"].action == "dismiss"
    assert backend.resolved["d1"].reason == (
        "Not a true allergy (an intolerance or side effect): the record will be updated: "
        "confirmed with patient: rash as a child, not an allergy"
    )
    assert item.hasFocus()  # focus stays on the resolved card, not on another card's button
    # the rewritten plan no longer gives gliclazide's dose: choosing the record's changes nothing
    qtbot.mouseClick(r.items["d2"].record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.sign_button.isEnabled(), timeout=5000)
    assert "needed no change" in r.items["d2"].outcome.text()
    qtbot.keyClick(
        window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(lambda: window.current_page() == "signed", timeout=5000)
    signed = backend.signed[0]
    assert signed.sections[0].content == "HbA1c 55 mmol/mol, up from 48."
    assert signed.sections[1].content == "Rewritten: shorter"
    assert "DocumentReference/dr-1" in window.signed.fhir.text()
    gui = threading.get_ident()
    slow = {
        "patient_context",
        "draft",
        "regenerate_section",
        "save_section",
        "resolve_discrepancy",
        "sign_off",
    }
    assert all(tid != gui for name, tid in backend.calls if name in slow)
    # next patient: back to the clinic, the next one highlighted
    window.flow.next_patient()
    qtbot.waitUntil(lambda: window.current_page() == "dashboard", timeout=5000)
    qtbot.waitUntil(
        lambda: (
            window.dashboard.rows.get("pt-002") is not None
            and window.dashboard.rows["pt-002"].property("current") is True
        ),
        timeout=5000,
    )


def test_fact_click_shows_its_source(window, qtbot):
    _to_review(window, qtbot)
    r = window.review
    r.facts.setCurrentRow(0)
    assert "Observation/obs-1" in r.source_view.toPlainText()


def test_generation_failure_offers_retry(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window
    from clarke_desktop.llm.base import ModelOutOfMemory

    w = build_window(
        FakeBackend(
            fail_generate=ModelOutOfMemory(
                "The letter model ran out of memory. Close other programs and try again."
            )
        )
    )
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    try:
        _open = w.dashboard.rows["pt-001"]
        qtbot.mouseClick(_open, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.patient_screen.start_button.isEnabled(), timeout=5000)
        w.flow.begin_consultation()
        w.consultation.transcript.setPlainText("text")
        w.flow.generate()
        qtbot.waitUntil(lambda: w.processing.retry_button.isVisibleTo(w.processing), timeout=5000)
        assert w.current_page() == "processing"
        assert not w.review.sign_button.isEnabled()
    finally:
        w.runner.shutdown()


def test_chart_assistant_trace_answer_and_proposal(window, qtbot):
    qtbot.keyClick(window.dashboard.rows["pt-001"], Qt.Key.Key_Return)
    window.toggle_assistant()
    a = window.assistant
    a.question.setText("What was the last HbA1c?")
    qtbot.mouseClick(a.ask_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "p1" in a.proposals, timeout=5000)
    assert a.trace.count() == 1
    assert "Observation/obs-1" in a.answer.toPlainText()
    assert "Demo model" in a.answer.toPlainText()
    qtbot.mouseClick(a.proposals["p1"].approve, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: a.proposals["p1"].state.text().startswith("Approved"), timeout=5000)


def test_settings_and_diagnostics_screens(window, qtbot):
    window.navigate("diagnostics")
    qtbot.waitUntil(lambda: window.diagnostics.refresh_button.isEnabled(), timeout=5000)
    window.navigate("settings")
    qtbot.waitUntil(lambda: window.settings_screen.name.text() == "Dr Sarah Chen", timeout=5000)


def test_every_button_has_an_accessible_name(window, qtbot):
    from PySide6.QtWidgets import QAbstractButton

    _to_review(window, qtbot)
    unnamed = [b.text() for b in window.findChildren(QAbstractButton) if b.text() and not b.accessibleName()]
    assert unnamed == []


def test_lab_range_and_trend_helpers():
    src = SourceRef(resource_type="Observation", id="o")
    assert out_of_range("55", "20-42") == "H"
    assert out_of_range("3.1", "3.5 – 5.3") == "L"
    assert out_of_range("52", ">60") == "L"
    assert out_of_range("4.0", "3.5-5.3") is None
    assert out_of_range("positive", "20-42") is None
    lab = LabResult(
        name="eGFR",
        value="52",
        unit="mL/min",
        date="2026-01-10",
        previous_value="58",
        previous_date="2025-07-02",
        source=src,
    )
    assert trend_text(lab) == "↓ from 58 (02/07/2025)"
    assert trend_text(lab.model_copy(update={"previous_value": None})).startswith("—")


def test_interrupted_work_is_offered_for_recovery_at_start(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    backend = window.backend
    backend.interrupted = {
        "drafts": [{"consultation_id": "cons-pt-001"}],
        "recordings": [{}],
        "writebacks": [],
    }
    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes
    )
    window.flow.offer_recovery()
    qtbot.waitUntil(lambda: backend.recovered, timeout=5000)
    assert "1 letter draft, 1 recording" in asked[0]


def test_nothing_interrupted_asks_nothing(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes
    )
    window.flow.offer_recovery()
    qtbot.waitUntil(lambda: any(name == "interrupted_work" for name, _ in window.backend.calls), timeout=5000)
    qtbot.wait(200)
    assert asked == [] and not window.backend.recovered
