"""The signed screen's preview is drawn from a sealed PDF decrypted in memory (the PDF on disk is
not readable), and from a plaintext one as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from clarke_desktop.config import Settings
from clarke_desktop.gui.screens.signed import render_pdf_pages
from clarke_desktop.identity import keyring, sealed
from clarke_desktop.pdf import render_letter_pdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
import workflow_samples as samples  # noqa: E402

pytestmark = pytest.mark.gui


def test_a_sealed_pdf_is_previewed_from_memory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keyring.remember(data, bytes(range(32)))
    try:
        pdf = render_letter_pdf(samples.document("cons-1"), data / "exports" / "l.pdf", settings=Settings())
        assert b"%PDF" not in pdf.read_bytes()
        pages, total = render_pdf_pages(pdf, width_px=400)
    finally:
        keyring.forget(data)
    plain = render_letter_pdf(samples.document("cons-1"), tmp_path / "plain.pdf", settings=Settings())
    assert plain.read_bytes().startswith(b"%PDF-")
    plain_pages, plain_total = render_pdf_pages(plain, width_px=400)
    assert total == plain_total >= 1 and pages[0].width == plain_pages[0].width == 400
    with pytest.raises(sealed.NoKey):
        render_pdf_pages(pdf)  # nobody signed in: nothing to draw it with
