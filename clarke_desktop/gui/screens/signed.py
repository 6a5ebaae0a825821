"""Signed off: preview of the signed PDF, where it is kept, a readable copy on request, and the
next patient.

Once signed in, Clarke keeps the signed PDF encrypted in its data folder: the preview here is drawn
from it decrypted in memory, and "Save a copy…" is the one way to a readable PDF, written where the
clinician chooses and recorded in the audit log (the controller does the writing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from clarke_desktop.gui.widgets import badge, button, card, clear_layout, label, notice, scroll_page, vbox
from clarke_desktop.identity import sealed
from clarke_desktop.pipeline import FinaliseResult
from clarke_desktop.uk_format import local_time


@dataclass
class RenderedPage:
    width: int
    height: int
    stride: int
    data: bytes


def render_pdf_pages(path: Path, width_px: int = 820, max_pages: int = 3) -> tuple[list[RenderedPage], int]:
    """Rasterise the first pages (worker thread: pure pdfium, no Qt objects). A sealed PDF is
    decrypted in memory."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(sealed.read_bytes(Path(path)))
    try:
        pages: list[RenderedPage] = []
        for i in range(min(len(pdf), max_pages)):
            page = pdf[i]
            scale = width_px / page.get_width()
            bitmap = page.render(scale=scale, rev_byteorder=True)  # RGB(A) byte order for QImage
            arr = bitmap.to_numpy()
            h, w = arr.shape[:2]
            channels = arr.shape[2] if arr.ndim == 3 else 1
            pages.append(RenderedPage(w, h, w * channels, arr.tobytes()))
            page.close()
        return pages, len(pdf)
    finally:
        pdf.close()


class SignedOffScreen(QWidget):
    next_patient = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.result: FinaliseResult | None = None
        self._save_copy: Callable[[], None] | None = None
        outer = vbox(self, (28, 18, 28, 12), 10)
        head = QHBoxLayout()
        self.title = label("Letter signed off", "h1")
        head.addWidget(self.title)
        head.addWidget(badge("Signed off ✓", "ok"), 0, Qt.AlignmentFlag.AlignVCenter)
        head.addStretch(1)
        outer.addLayout(head)
        info = card(padding=14)
        self.where = label("", wrap=True, selectable=True)
        self.fhir = label("", "caption", wrap=True, selectable=True)
        self.saved = label("", "caption", wrap=True, selectable=True)
        info.layout().addWidget(self.where)
        info.layout().addWidget(self.fhir)
        info.layout().addWidget(self.saved)
        row = QHBoxLayout()
        self.save_button = button(
            "Save a copy…", accessible="Save a readable copy of the PDF",
            tip="Write a readable PDF to a folder you choose (recorded in the audit log)",
        )  # fmt: skip
        self.save_button.clicked.connect(lambda: self._save_copy() if self._save_copy else None)
        row.addWidget(self.save_button)
        row.addStretch(1)
        self.next_button = button("Next patient  →", "primary", accessible="Next patient", tip="Ctrl+N")
        self.next_button.clicked.connect(self.next_patient)
        row.addWidget(self.next_button)
        info.layout().addLayout(row)
        outer.addWidget(info)
        body = QWidget()
        self._pages = QVBoxLayout(body)
        self._pages.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._pages.setSpacing(14)
        outer.addWidget(scroll_page(body), 1)

    def set_result(
        self, result: FinaliseResult, patient_name: str, save_copy: Callable[[], None] | None = None
    ) -> None:
        """`save_copy` asks where and writes the readable copy (the controller's)."""
        self.result = result
        self._save_copy = save_copy
        self.title.setText(f"Letter signed off — {patient_name}")
        self.where.setText(
            "The signed PDF is kept encrypted in Clarke's data folder. For a readable copy (to print "
            "or send), use Save a copy…"
            if result.pdf_encrypted
            else f"PDF saved to:  {result.pdf_path}"
        )
        self.saved.setText("")
        by = f" by {result.signed_by}" if result.signed_by else ""
        where = (
            f"Written to the record as {result.document_reference}"
            if result.document_reference
            else "Not yet written to the record: "
            + ("; ".join(result.warnings) or "the record was unavailable")
        )
        self.fhir.setText(f"{where}  ·  signed {local_time(result.signed_at, zone=True)}{by}")
        clear_layout(self._pages)
        self._pages.addWidget(label("Rendering preview…", "caption"))

    def set_pages(self, pages: list[RenderedPage], total: int) -> None:
        clear_layout(self._pages)
        for p in pages:
            fmt = QImage.Format.Format_RGBA8888 if p.stride >= p.width * 4 else QImage.Format.Format_RGB888
            img = QImage(p.data, p.width, p.height, p.stride, fmt).copy()  # copy: own the bytes
            page = QLabel()
            page.setPixmap(QPixmap.fromImage(img))
            page.setStyleSheet("border: 1px solid #E2E6EE; background: white;")
            page.setAccessibleName("PDF page preview")
            self._pages.addWidget(page, 0, Qt.AlignmentFlag.AlignHCenter)
        if total > len(pages):
            self._pages.addWidget(label(f"… {total - len(pages)} more page(s) in the PDF", "caption"))

    def preview_failed(self, message: str) -> None:
        clear_layout(self._pages)
        self._pages.addWidget(
            notice(f"The preview could not be drawn ({message}). The PDF itself is saved.", "warn")
        )

    def copy_saved(self, path: Path) -> None:
        self.saved.setText(f"Readable copy saved to:  {path}  (recorded in the audit log)")
