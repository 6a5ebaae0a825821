"""Small building blocks shared by the screens: labels with a role, cards, badges, banners."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

TONES = ("ok", "demo", "warn", "bad", "info", "neutral", "rec")


def repolish(widget: QWidget) -> None:
    """Re-apply the stylesheet after a dynamic property changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def label(text: str = "", role: str | None = None, *, wrap: bool = False, selectable: bool = False) -> QLabel:
    lab = QLabel(text)
    if role in ("h1", "h2", "h3", "caption", "mono"):
        lab.setObjectName(role)
    if wrap:
        lab.setWordWrap(True)
    if selectable:
        lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


def badge(text: str, tone: str = "neutral", accessible: str | None = None) -> QLabel:
    lab = QLabel(text)
    lab.setProperty("badge", True)
    lab.setProperty("tone", tone)
    lab.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    lab.setAccessibleName(accessible or text)
    return lab


def set_badge(lab: QLabel, text: str, tone: str, accessible: str | None = None) -> None:
    if lab.text() == text and lab.property("tone") == tone:
        return
    lab.setText(text)
    lab.setProperty("tone", tone)
    lab.setAccessibleName(accessible or text)
    repolish(lab)


def button(
    text: str, kind: str | None = None, *, accessible: str | None = None, tip: str | None = None
) -> QPushButton:
    btn = QPushButton(text)
    if kind:
        btn.setProperty("kind", kind)
    btn.setAccessibleName(accessible or text.replace("&", ""))
    if tip:
        btn.setToolTip(tip)
    btn.setCursor(Qt.CursorShape.PointingHandCursor)
    return btn


def card(layout: QLayout | None = None, *, name: str | None = None, padding: int = 16) -> QFrame:
    frame = QFrame()
    if name:
        frame.setObjectName(name)
    else:
        frame.setProperty("card", True)
    lay = layout or QVBoxLayout()
    lay.setContentsMargins(padding, padding, padding, padding)
    frame.setLayout(lay)
    return frame


def notice(text: str, kind: str = "warn", title: str | None = None) -> QFrame:
    """An alert/warn/info card: `kind` in alert|warn|info. Colour plus words, never colour alone."""
    frame = QFrame()
    frame.setObjectName({"alert": "alertCard", "warn": "warnCard", "info": "infoCard"}[kind])
    lay = QVBoxLayout(frame)
    lay.setContentsMargins(14, 10, 14, 10)
    lay.setSpacing(4)
    if title:
        t = QLabel(title)
        t.setStyleSheet("font-weight: 700;")
        lay.addWidget(t)
    body = QLabel(text)
    body.setWordWrap(True)
    lay.addWidget(body)
    frame.setAccessibleName(f"{title or kind}: {text}")
    return frame


def scroll_page(inner: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setObjectName("page")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    inner.setObjectName("pageBody")
    area.setWidget(inner)
    return area


def vbox(
    parent: QWidget | None = None,
    margins: tuple[int, int, int, int] = (0, 0, 0, 0),
    spacing: int | None = None,
) -> QVBoxLayout:
    """A column layout (on `parent` when given) with its margins (left, top, right, bottom) and spacing."""
    col = QVBoxLayout(parent) if parent is not None else QVBoxLayout()
    col.setContentsMargins(*margins)
    if spacing is not None:
        col.setSpacing(spacing)
    return col


def hbox(*widgets: QWidget | None, spacing: int = 8, stretch_at: int | None = None) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setSpacing(spacing)
    for i, w in enumerate(widgets):
        if stretch_at == i:
            row.addStretch(1)
        if w is not None:
            row.addWidget(w)
    if stretch_at is not None and stretch_at >= len(widgets):
        row.addStretch(1)
    return row


def clear_layout(layout: QLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        w = item.widget()
        if w is not None:
            # hide, don't unparent: an unparented visible widget becomes a top-level window
            # that steals activation (and with it the window's keyboard shortcuts)
            w.hide()
            w.deleteLater()
        elif item.layout() is not None:
            clear_layout(item.layout())


def enable(widget: QWidget, ok: bool, why_not: str, tip: str = "") -> None:
    """Enable `widget`, or disable it saying why: the tooltip a hover shows, and a click shows at
    once (DisabledExplainer). Every action that can be disabled is disabled through this."""
    widget.setEnabled(ok)
    widget.setToolTip(tip if ok else why_not)


class DisabledExplainer(QObject):
    """A click on a disabled button shows why it is disabled, where the clinician is looking
    (a disabled widget gets no clicked signal, and silence reads as a broken button)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(obj, QAbstractButton)
            and not obj.isEnabled()
            and obj.toolTip()
        ):
            QToolTip.showText(obj.mapToGlobal(obj.rect().center()), obj.toolTip(), obj)
        return False


class WheelGuard(QObject):
    """A mouse wheel over a drop-down or a number box that does not have the keyboard focus scrolls
    the page, never the value: scrolling Settings must not switch the letter model (it did)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(obj, QComboBox | QAbstractSpinBox)
            and not obj.hasFocus()
        ):
            area = _scroll_area_of(obj)
            if area is not None:
                QApplication.sendEvent(area.viewport(), event)
            return True
        return False


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent
