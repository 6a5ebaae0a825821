"""The sign-off preview: exactly what will be signed and sent, who signs it and where it goes, and
a deliberate confirm step with the signer's password (re-authentication: whoever is at the keyboard
of an unlocked session still cannot sign as its owner). "Back to the letter" is the default button,
so Enter never signs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QWidget

from clarke_desktop.gui.screens.signed import RenderedPage
from clarke_desktop.gui.widgets import enable, label, scroll_page, vbox
from clarke_desktop.pipeline import SignOffPreview


class SignOffDialog(QDialog):
    def __init__(
        self,
        parent: QWidget | None,
        preview: SignOffPreview,
        pages: list[RenderedPage],
        total: int,
        *,
        ask_password: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign off: check the letter")
        self.setModal(True)
        self.resize(900, 700)
        lay = vbox(self, (20, 16, 20, 16), 10)
        lay.addWidget(label("This is exactly what will be signed and sent.", "h2"))
        lay.addWidget(label(f"Signed by: {preview.signer}", wrap=True, selectable=True))
        lay.addWidget(label(f"Sent to: {preview.destination}", wrap=True, selectable=True))
        body = QWidget()
        pages_lay = vbox(body, (0, 0, 0, 0), 12)
        for p in pages:
            fmt = QImage.Format.Format_RGBA8888 if p.stride >= p.width * 4 else QImage.Format.Format_RGB888
            page = QLabel()
            page.setPixmap(QPixmap.fromImage(QImage(p.data, p.width, p.height, p.stride, fmt).copy()))
            page.setAccessibleName("Letter page preview")
            pages_lay.addWidget(page, 0, Qt.AlignmentFlag.AlignHCenter)
        if not pages:
            pages_lay.addWidget(
                label(f"The preview could not be drawn; the PDF is {preview.pdf_path}.", wrap=True)
            )
        elif total > len(pages):
            pages_lay.addWidget(label(f"… {total - len(pages)} more page(s)", "caption"))
        lay.addWidget(scroll_page(body), 1)
        buttons = QDialogButtonBox()
        self.back_button = buttons.addButton("Back to the letter", QDialogButtonBox.ButtonRole.RejectRole)
        self.sign_button = buttons.addButton("Sign and send", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_button.setAccessibleName("Sign and send the letter")
        self.password: QLineEdit | None = None
        if ask_password:
            self.password = QLineEdit()
            self.password.setEchoMode(QLineEdit.EchoMode.Password)
            self.password.setAccessibleName("Your password, to sign")
            self.password.setPlaceholderText("Your password, to sign as yourself")
            self.password.textChanged.connect(lambda _t: self._update_sign())
            lay.addWidget(self.password)
            self._update_sign()
        self.back_button.setDefault(True)
        self.back_button.setFocus()
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _update_sign(self) -> None:
        assert self.password is not None
        enable(self.sign_button, bool(self.password.text()), "Type your password to sign", "Sign and send")

    @classmethod
    def confirm(
        cls,
        parent: QWidget | None,
        preview: SignOffPreview,
        pages: list[RenderedPage],
        total: int,
        *,
        ask_password: bool = False,
    ) -> str | None:
        """Show the preview and wait for the clinician's decision: None to go back; to sign, the
        password typed (checked by the caller before anything is signed), or "" when none is asked."""
        dialog = cls(parent, preview, pages, total, ask_password=ask_password)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.password.text() if dialog.password is not None else ""
