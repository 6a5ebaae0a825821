"""Letters as PDF (reportlab), in NHS outpatient letter layout."""

from clarke_desktop.pdf.letter import (
    DEMO_MARKING,
    SignatureInfo,
    letter_pdf_bytes,
    render_letter_pdf,
)

__all__ = ["DEMO_MARKING", "SignatureInfo", "letter_pdf_bytes", "render_letter_pdf"]
