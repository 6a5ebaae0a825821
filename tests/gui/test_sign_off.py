"""Sign-off is deliberate: nothing is signed until the clinician has seen a preview of exactly what
will be signed and sent (with the signer and where it goes) and confirmed; a section left empty
blocks it with the section named; "Back" leaves the letter unsigned."""

from __future__ import annotations

import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


@pytest.fixture
def window(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window

    w = build_window(FakeBackend())
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    yield w
    w.runner.shutdown()


def _reviewed(w, qtbot) -> None:
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=5000)
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: how are the sugars? Patient: higher.")
    w.flow.generate()
    qtbot.waitUntil(lambda: w.review.document is not None and not w.review.busy_reasons, timeout=10000)
    for item in list(w.review.items.values()):
        qtbot.mouseClick(item.keep_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.review.can_sign(), timeout=5000)


def test_the_preview_is_shown_before_anything_is_signed(window, qtbot, dialogs) -> None:
    w = window
    _reviewed(w, qtbot)
    qtbot.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=5000)
    ((preview, _pages, _total),) = dialogs.previews
    assert preview.signer.startswith("Dr Sarah Chen") and "record" in preview.destination
    names = [n for n, _ in w.backend.calls]
    assert names.index("preview_sign_off") < names.index("sign_off")
    assert w.backend.previewed.sections == w.backend.signed[0].sections  # what was shown is what was signed
    assert "discard_preview" in names


def test_back_from_the_preview_signs_nothing(window, qtbot, dialogs, monkeypatch) -> None:
    from clarke_desktop.gui.screens.signoff import SignOffDialog

    w = window
    _reviewed(w, qtbot)
    monkeypatch.setattr(SignOffDialog, "confirm", classmethod(lambda cls, *a, **k: None))
    w.flow.sign_off()
    qtbot.waitUntil(lambda: "Not signed" in w.review.progress_note.text(), timeout=5000)
    assert w.backend.signed == [] and w.current_page() == "review"
    assert w.review.can_sign()  # the clinician can try again


def test_an_empty_section_blocks_sign_off_and_is_named(window, qtbot, dialogs) -> None:
    w = window
    _reviewed(w, qtbot)
    card = w.review.cards["plan"]
    card.editor.setPlainText("   ")
    w.review.flush_edits()
    qtbot.waitUntil(lambda: not w.review.can_sign(), timeout=5000)
    qtbot.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert "“Plan” (empty)" in w.review.progress_note.text()
    assert "“Plan”" in w.review.sign_button.toolTip()
    assert dialogs.previews == [] and w.backend.signed == []
    card.editor.setPlainText("Add gliclazide 40 mg once daily.")
    w.review.flush_edits()
    qtbot.waitUntil(lambda: w.review.can_sign(), timeout=5000)


def test_save_a_copy_writes_a_readable_pdf_where_the_clinician_chooses(
    window, qtbot, dialogs, monkeypatch, tmp_path
) -> None:
    """The kept PDF is encrypted: "Save a copy…" is the way to a readable one, off the GUI thread."""
    import threading

    from PySide6.QtWidgets import QFileDialog

    w = window
    _reviewed(w, qtbot)
    w.flow.sign_off()
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=5000)
    assert "kept encrypted" in w.signed.where.text()
    asked: list[str] = []

    def choose(_parent, title, suggested, _filter):
        asked.append(suggested)
        return str(tmp_path / "for the GP"), "PDF (*.pdf)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    qtbot.mouseClick(w.signed.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(w.backend.copies), timeout=5000)
    assert asked and asked[0].endswith("letter.pdf")  # the signed letter's own name is suggested
    assert w.backend.copies == [(w.signed.result.consultation_id, 2, tmp_path / "for the GP.pdf")]
    qtbot.waitUntil(lambda: "for the GP.pdf" in w.signed.saved.text(), timeout=5000)
    assert dict(w.backend.calls)["save_pdf_copy"] != threading.get_ident()

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: ("", ""))  # cancelled: nothing written
    qtbot.mouseClick(w.signed.save_button, Qt.MouseButton.LeftButton)
    assert len(w.backend.copies) == 1


def test_text_the_clinician_edits_is_labelled_as_theirs(window, qtbot) -> None:
    w = window
    _reviewed(w, qtbot)
    card = w.review.cards["history"]
    assert card.tag.text() == "Demo model text"
    card.editor.setPlainText("Seen in clinic today; my own words.")
    assert card.tag.text() == "Edited by you"


def test_an_empty_fact_check_says_why_it_is_empty(window, qtbot) -> None:
    w = window
    _reviewed(w, qtbot)
    doc = w.review.document.model_copy(update={"fact_check": []})
    w.review.set_document(doc)
    assert w.review.facts.count() == 1
    assert w.review.facts.item(0).text().startswith("Nothing to check: the written sections name no drug")
    w.review.facts.setCurrentRow(0)  # the explanation line is not a fact: selecting it is harmless
    for s in doc.sections:
        s.content = ""
    w.review.set_document(doc)
    assert w.review.facts.item(0).text().startswith("Nothing to check yet: no section has text")


def test_the_chart_assistants_steps_are_shown_in_full(window, qtbot) -> None:
    from clarke_desktop.session.views import AssistantStep

    panel = window.assistant
    panel.resize(340, 600)
    long_step = (
        "Observation?patient=pt-001&code=http://loinc.org|4548-4&_sort=-date&_count=10 (HbA1c, newest first)"
    )
    panel.add_step(AssistantStep("search", long_step))
    item = panel.trace.item(0)
    assert item.text().endswith(long_step) and item.toolTip() == item.text()
    assert panel.trace.wordWrap() and panel.trace.textElideMode() == Qt.TextElideMode.ElideNone


def test_closing_after_sign_off_asks_nothing(window, qtbot, dialogs) -> None:
    w = window
    _reviewed(w, qtbot)
    w.flow.sign_off()
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=5000)
    assert w.flow.work_in_progress() is None
    w.close()
    assert not any(q.startswith("Close Clarke") for q in dialogs.asked)
