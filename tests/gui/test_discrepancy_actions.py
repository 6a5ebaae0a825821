"""The checklist's actions change the letter where it gives the value, show the change marked,
undo it, say where each item sits in the letter and the transcript, and F8 walks the open items."""

from __future__ import annotations

import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


@pytest.fixture
def review(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window

    w = build_window(FakeBackend())
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=5000)
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: gliclazide eighty milligrams? Patient: yes.")
    w.flow.generate()
    qtbot.waitUntil(lambda: w.review.document is not None and not w.review.busy_reasons, timeout=10000)
    yield w.review
    w.runner.shutdown()


def test_use_what_was_said_rewrites_the_dose_marked_and_undo_takes_it_back(review, qtbot) -> None:
    r = review
    item, plan = r.items["d2"], r.cards["plan"]
    assert item.where.text() == "In the letter: Plan, “40 mg”"
    assert (
        item.record_button.text() == "Use record: 40 mg"
        and item.said_button.text() == "Use what was said: 80 mg"
    )
    assert r.items["d1"].record_button is None  # a denied allergy has no single value to choose

    qtbot.mouseClick(item.said_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: item.d.resolution is not None, timeout=5000)
    assert plan.text() == "Start gliclazide 80 mg."
    assert plan.highlights == [(17, 22)] and plan.text()[17:22] == "80 mg"
    assert plan.tag.text().startswith("Edited by")
    assert "the letter now says 80 mg" in item.outcome.text() and item.undo_button.isVisibleTo(item)
    assert not item.actions.isVisibleTo(item)

    qtbot.mouseClick(item.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: item.d.resolution is None, timeout=5000)
    assert plan.text() == "Start gliclazide 40 mg."
    assert item.actions.isVisibleTo(item) and not item.undo_button.isVisibleTo(item)
    assert "open" in r.tabs.tabText(0)


def test_keep_both_writes_both_values_into_the_letter(review, qtbot) -> None:
    r = review
    qtbot.mouseClick(r.items["d2"].keep_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.items["d2"].d.resolution is not None, timeout=5000)
    assert r.cards["plan"].text() == (
        "Start gliclazide 40 mg. Gliclazide: the patient reports taking 80 mg; the record gives a dose of 40 mg."
    )


def test_show_marks_the_place_in_the_letter_and_the_transcript(review, qtbot) -> None:
    r = review
    qtbot.mouseClick(r.items["d2"].to_letter, Qt.MouseButton.LeftButton)
    plan = r.cards["plan"]
    assert [plan.text()[a:b] for a, b in plan.highlights] == ["40 mg"]
    assert not r.items["d1"].to_letter.isEnabled()  # the letter does not mention it: nothing to show
    r.show_in_transcript("d2")
    assert r.tabs.currentWidget() is r.transcript_view


def test_f8_walks_the_open_items_only(review, qtbot) -> None:
    r = review
    r.setFocus()
    qtbot.keyClick(r, Qt.Key.Key_F8)
    assert r.items["d1"].hasFocus()
    qtbot.keyClick(r, Qt.Key.Key_F8)
    assert r.items["d2"].hasFocus()
    qtbot.mouseClick(r.items["d2"].record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.items["d2"].d.resolution is not None, timeout=5000)
    qtbot.keyClick(r, Qt.Key.Key_F8)
    assert r.items["d1"].hasFocus()  # d2 is resolved: skipped
    qtbot.keyClick(r, Qt.Key.Key_F8)
    assert r.items["d1"].hasFocus()


def test_an_undo_over_typed_words_is_refused_with_the_reason(review, qtbot, dialogs) -> None:
    r = review
    qtbot.mouseClick(r.items["d2"].said_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: r.items["d2"].d.resolution is not None, timeout=5000)
    r.cards["plan"].editor.setPlainText("Gliclazide to be reviewed by the GP.")
    r.flush_edits()
    qtbot.mouseClick(r.items["d2"].undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialogs.shown), timeout=5000)
    assert "edit the section by hand" in dialogs.shown[-1]
    assert r.cards["plan"].text() == "Gliclazide to be reviewed by the GP."
    assert r.items["d2"].d.resolution is not None


def test_typing_elsewhere_is_never_overwritten_by_a_resolution(review, qtbot) -> None:
    """A resolution's saved letter comes back while the clinician types in another section: only
    the section the resolution rewrote changes on screen."""
    r = review
    qtbot.mouseClick(r.items["d2"].said_button, Qt.MouseButton.LeftButton)
    r.cards["history"].editor.setPlainText("Typed while the resolution was being saved.")
    qtbot.waitUntil(lambda: r.items["d2"].d.resolution is not None, timeout=5000)
    assert r.cards["history"].text() == "Typed while the resolution was being saved."
    assert r.cards["plan"].text() == "Start gliclazide 80 mg."

