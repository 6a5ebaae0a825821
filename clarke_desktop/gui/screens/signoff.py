"""The sign-off preview: exactly what will be signed and sent, who signs it and where it goes, and
a deliberate confirm step. "Back to the letter" is the default button, so Enter never signs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QWidget

from clarke_desktop.gui.screens.signed import RenderedPage
from clarke_desktop.gui.widgets import label, scroll_page, vbox
from clarke_desktop.pipeline import SignOffPreview


class SignOffDialog(QDialog):
    def __init__(
        self, parent: QWidget | None, preview: SignOffPreview, pages: list[RenderedPage], total: int
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
        self.back_button.setDefault(True)
        self.back_button.setFocus()
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    @classmethod
    def confirm(
        cls, parent: QWidget | None, preview: SignOffPreview, pages: list[RenderedPage], total: int
    ) -> bool:
        """Show the preview and wait for the clinician's decision (True: sign)."""
        return cls(parent, preview, pages, total).exec() == QDialog.DialogCode.Accepted
