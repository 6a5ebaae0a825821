"""Every disabled action says why: on hover (its tooltip) and on click (the tooltip shown at once),
on each screen of a consultation."""

from __future__ import annotations

import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QToolTip

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


def _silent(w) -> list[str]:
    """Disabled buttons on screen that would not say why."""
    return [
        b.accessibleName() or b.text()
        for b in w.findChildren(QAbstractButton)
        if b.isVisible() and not b.isEnabled() and not b.toolTip().strip()
    ]


def test_no_disabled_button_is_silent_on_any_screen(window, qtbot) -> None:
    w = window
    assert _silent(w) == []  # the clinic list: the patient pages are not open yet
    assert "Open a patient" in w.nav["letter"].toolTip()
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=5000)
    assert _silent(w) == []
    w.flow.begin_consultation()
    assert not w.consultation.generate_button.isEnabled() and _silent(w) == []
    w.consultation.transcript.setPlainText("Doctor: how are the sugars? Patient: higher.")
    w.flow.generate()
    qtbot.waitUntil(lambda: w.review.document is not None and not w.review.busy_reasons, timeout=10000)
    assert not w.review.sign_button.isEnabled() and _silent(w) == []


def test_a_click_on_a_disabled_button_shows_why(window, qtbot) -> None:
    w = window
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=5000)
    w.flow.begin_consultation()
    button = w.consultation.generate_button
    assert not button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert QToolTip.isVisible() and QToolTip.text() == "Record, import audio or paste a transcript first"
