"""The lock: when the workstation is left (idle for the configured minutes, or Ctrl+L), every
patient detail is covered and every shortcut is off until the same clinician unlocks or another
signs in. Shared clinic PCs are left unattended between patients; this is what NHS buyers check."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

from clarke_desktop.gui.widgets import button, card, enable, label

ACTIVITY = {
    QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
}  # fmt: skip


class IdleWatch(QObject):
    """Fires `idle` after `minutes` without a key press, click, wheel or mouse move anywhere in
    the app (0 turns it off)."""

    idle = Signal()

    def __init__(self, parent: QObject, minutes: float) -> None:
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.idle)
        self.set_minutes(minutes)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def set_minutes(self, minutes: float) -> None:
        self.minutes = minutes
        if minutes > 0:
            self.timer.setInterval(int(minutes * 60_000))
            self.timer.start()
        else:
            self.timer.stop()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() in ACTIVITY and self.minutes > 0 and self.timer.isActive():
            self.timer.start()  # restart: the clinician is here
        return False

    def pause(self) -> None:
        self.timer.stop()

    def resume(self) -> None:
        if self.minutes > 0:
            self.timer.start()


class LockScreen(QWidget):
    """Covers the whole window (sidebar, header, pages, the assistant) while locked."""

    unlock = Signal(str, str)  # user name, password

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("lockScreen")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # paint the cover, opaque
        self.setStyleSheet("#lockScreen { background: #1E3A5F; }")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        lay = QVBoxLayout()
        lay.setSpacing(10)
        box = card(lay, name="lockCard", padding=28)
        box.setFixedWidth(480)  # a fixed width lets the wrapped text take the height it needs
        box.setStyleSheet("#lockCard { background: white; border-radius: 8px; }")
        lay.addWidget(label("Clarke is locked", "h1"))
        self.who = label("", "caption", wrap=True)
        lay.addWidget(self.who)
        self.name = QLineEdit()
        self.name.setAccessibleName("User name")
        self.name.setPlaceholderText("User name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        self.password.setPlaceholderText("Password")
        self.error = label("", wrap=True)
        self.error.setStyleSheet("color: #B3261E; font-weight: 600;")
        self.unlock_button = button("Unlock", "primary", accessible="Unlock")
        for w in (self.name, self.password, self.error, self.unlock_button):
            lay.addWidget(w)
        self.password.returnPressed.connect(self.unlock_button.click)
        self.name.returnPressed.connect(self.password.setFocus)
        self.password.textChanged.connect(lambda _t: self._ready())
        self.unlock_button.clicked.connect(self._unlock)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.hide()

    def show_for(self, name: str, display: str, reason: str) -> None:
        self.who.setText(
            f"{reason} Signed in as {display}: type your password to go on. Someone else may sign in "
            "here instead; the patient open now is then closed (all work is saved)."
        )
        self.who.setMinimumHeight(self.who.heightForWidth(424))  # wrapped in full, never clipped
        self.name.setText(name)
        self.password.clear()
        self.error.clear()
        self._ready()
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.show()
        self.raise_()
        self.password.setFocus()

    def failed(self, message: str) -> None:
        self.error.setText(message)
        self.password.clear()
        self.password.setFocus()
        self.unlock_button.setEnabled(True)
        self._ready()

    def _ready(self) -> None:
        enable(self.unlock_button, bool(self.password.text()), "Type your password first", "Unlock")

    def _unlock(self) -> None:
        enable(self.unlock_button, False, "Checking…")
        self.unlock.emit(self.name.text().strip(), self.password.text())
