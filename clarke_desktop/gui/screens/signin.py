"""Sign-in at start, and the first start's set-up (the IT administrator, the first clinician and the
recovery key shown once). Without a sign-in nothing of the data is opened."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from clarke_desktop.errors import ClarkeError
from clarke_desktop.gui.widgets import enable, label, vbox
from clarke_desktop.identity import Unlocked
from clarke_desktop.session.identity import Identity


def _password_box(name: str) -> QLineEdit:
    box = QLineEdit()
    box.setEchoMode(QLineEdit.EchoMode.Password)
    box.setAccessibleName(name)
    return box


class SignInDialog(QDialog):
    """User name and password; a refusal is shown in place and the password cleared."""

    def __init__(self, parent: QWidget | None, attempt: Callable[[str, str], Unlocked]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Clarke Desktop: sign in")
        self._attempt = attempt
        self.unlocked: Unlocked | None = None
        lay = vbox(self, (24, 20, 24, 20), 10)
        lay.addWidget(label("Sign in to Clarke", "h2"))
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setAccessibleName("User name")
        self.password = _password_box("Password")
        form.addRow("User name", self.name)
        form.addRow("Password", self.password)
        lay.addLayout(form)
        self.error = label("", wrap=True)
        self.error.setStyleSheet("color: #B3261E; font-weight: 600;")
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Sign in")
        buttons.accepted.connect(self._try)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.password.textChanged.connect(lambda _t: self._ready())
        self.name.textChanged.connect(lambda _t: self._ready())
        self._ready()

    def _ready(self) -> None:
        enable(self.ok, bool(self.name.text().strip() and self.password.text()),
               "Type your user name and password", "Sign in")  # fmt: skip

    def _try(self) -> None:
        try:
            self.unlocked = self._attempt(self.name.text().strip(), self.password.text())
        except ClarkeError as e:
            self.error.setText(e.user_text)
            self.password.clear()
            self.password.setFocus()
            return
        self.accept()


class SetUpDialog(QDialog):
    """First start: IT's administrator account and the first clinician (who signs letters)."""

    def __init__(self, parent: QWidget | None, identity: Identity) -> None:
        super().__init__(parent)
        self.setWindowTitle("Clarke Desktop: first start")
        self._identity = identity
        self.recovery_key = ""
        self.clinician: Unlocked | None = None
        self.admin: Unlocked | None = None
        lay = vbox(self, (24, 20, 24, 20), 10)
        lay.addWidget(label("Set up Clarke on this computer", "h2"))
        lay.addWidget(label("An administrator (IT) manages accounts and keys; clinicians sign letters. "
                            "Passwords: at least 10 characters.", "caption", wrap=True))  # fmt: skip
        form = QFormLayout()
        self.admin_name = QLineEdit("it.admin")
        self.admin_display = QLineEdit("IT Administrator")
        self.admin_password = _password_box("Administrator password")
        form.addRow("Administrator user name", self.admin_name)
        form.addRow("Administrator shown as", self.admin_display)
        form.addRow("Administrator password", self.admin_password)
        self.add_clinician = QCheckBox("Also create the first clinician account")
        self.add_clinician.setChecked(True)
        form.addRow(self.add_clinician)
        self.clin_name = QLineEdit()
        self.clin_name.setPlaceholderText("e.g. s.chen")
        self.clin_display = QLineEdit()
        self.clin_display.setPlaceholderText("e.g. Dr Sarah Chen")
        self.clin_registration = QLineEdit()
        self.clin_registration.setPlaceholderText("e.g. GMC 7012345")
        self.clin_password = _password_box("Clinician password")
        for text, box in (("Clinician user name", self.clin_name), ("Shown on letters as", self.clin_display),
                          ("GMC/NMC number", self.clin_registration), ("Clinician password", self.clin_password)):
            form.addRow(text, box)  # fmt: skip
        lay.addLayout(form)
        self.error = label("", wrap=True)
        self.error.setStyleSheet("color: #B3261E; font-weight: 600;")
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create accounts")
        buttons.accepted.connect(self._create)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _create(self) -> None:
        try:
            done = self._identity.set_up(self.admin_name.text().strip(), self.admin_display.text().strip(),
                                         self.admin_password.text())  # fmt: skip
        except ClarkeError as e:
            self.error.setText(e.user_text)
            return
        self.admin, self.recovery_key = done.admin, done.recovery_key
        if self.add_clinician.isChecked() and self.clin_name.text().strip():
            try:
                self._identity.add(done.admin, self.clin_name.text().strip(), self.clin_display.text().strip(),
                                   "clinician", self.clin_password.text(),
                                   registration=self.clin_registration.text().strip() or None)  # fmt: skip
                self.clinician = self._identity.sign_in(self.clin_name.text().strip(), self.clin_password.text())
            except ClarkeError as e:  # the admin exists: the clinician can be added later by IT
                self.error.setText(f"The administrator was created; the clinician was not: {e.user_text}")
        self.accept()


class RecoveryKeyDialog(QDialog):
    """The IT recovery key, shown once: it cannot be shown again. Continue only once it is kept."""

    def __init__(self, parent: QWidget | None, recovery_key: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("IT recovery key: shown once")
        lay = vbox(self, (24, 20, 24, 20), 10)
        lay.addWidget(label("Keep this recovery key safe, offline", "h2"))
        lay.addWidget(label("If every administrator password is forgotten, this key is the only way to "
                            "the data. It is not stored anywhere and will not be shown again. See the IT "
                            "guide, “Recovery key”.", wrap=True))  # fmt: skip
        self.key = QPlainTextEdit(recovery_key)
        self.key.setReadOnly(True)
        self.key.setAccessibleName("Recovery key")
        self.key.setMaximumHeight(70)
        lay.addWidget(self.key)
        copy = QDialogButtonBox()
        copy_button = copy.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy_button.clicked.connect(lambda: QApplication.clipboard().setText(recovery_key))
        lay.addWidget(copy)
        self.kept = QCheckBox("I have stored the recovery key safely")
        lay.addWidget(self.kept)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Continue")
        self.kept.toggled.connect(lambda on: enable(self.ok, on, "Store the key first, then tick the box"))
        enable(self.ok, False, "Store the key first, then tick the box")
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)


def start_session(identity: Identity) -> Unlocked | None:
    """Who uses this window: the first start's set-up when there are no accounts, then a sign-in.
    Headless (screenshots, kiosk tests): CLARKE_SETUP_FILE sets up, and CLARKE_USER with
    CLARKE_PASSWORD_FILE signs in, without a dialog. None: the user cancelled."""
    setup_file = os.environ.get("CLARKE_SETUP_FILE")
    if identity.needs_setup() and setup_file:
        identity.set_up_from_file(Path(setup_file))
    if identity.needs_setup():
        dialog = SetUpDialog(None, identity)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        RecoveryKeyDialog(None, dialog.recovery_key).exec()
        if dialog.clinician is not None:
            return dialog.clinician
        return dialog.admin
    user, password_file = os.environ.get("CLARKE_USER"), os.environ.get("CLARKE_PASSWORD_FILE")
    if user and password_file:
        lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        return identity.sign_in(user, lines[0] if lines else "")
    sign_in = SignInDialog(None, identity.sign_in)
    return sign_in.unlocked if sign_in.exec() == QDialog.DialogCode.Accepted else None
