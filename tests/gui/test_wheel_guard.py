"""A mouse wheel over an unfocused drop-down or number box scrolls the page, never the value (in
Settings it switched the letter model from "Installed MedGemma" to "Local model server")."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea, QSpinBox, QVBoxLayout, QWidget

pytestmark = pytest.mark.gui


def _wheel(widget: QWidget) -> None:
    event = QWheelEvent(QPointF(5, 5), QPointF(widget.mapToGlobal(QPoint(5, 5))), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QApplication.sendEvent(widget, event)


def test_an_unfocused_combo_and_spin_box_keep_their_value_and_the_page_scrolls(styled_app, qtbot) -> None:
    page = QWidget()
    column = QVBoxLayout(page)
    combo, spin = QComboBox(), QSpinBox()
    combo.addItems(["Installed MedGemma", "Local model server", "Embedded demo"])
    for widget in (combo, spin):
        column.addWidget(widget)
    for _ in range(40):
        column.addWidget(QComboBox())  # a long page
    area = QScrollArea()
    area.setWidget(page)
    area.resize(300, 200)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    before = area.verticalScrollBar().value()
    _wheel(combo)
    _wheel(spin)
    assert combo.currentIndex() == 0 and spin.value() == 0
    assert area.verticalScrollBar().value() > before  # the wheel went to the page


def test_a_focused_combo_still_takes_the_wheel(styled_app, qtbot) -> None:
    combo = QComboBox()
    combo.addItems(["a", "b", "c"])
    qtbot.addWidget(combo)
    combo.show()
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=2000)
    _wheel(combo)
    assert combo.currentIndex() == 1
