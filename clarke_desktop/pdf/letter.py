"""NHS outpatient letter as PDF (reportlab): letterhead, date, addressee GP and practice, "Re:" line
with name, date of birth and NHS number, sections, medication list, signature block, cc patient,
"Page x of y", and a red "demo model - not for clinical use" marking when the embedded stand-in
model wrote any of it.

All text is escaped before it reaches reportlab's paragraph markup, so clinical text such as
"eGFR <60" prints as written instead of being parsed (and dropped) as a tag.

The PDF is built in memory and written once: sealed (identity.sealed) when the folder it goes to is
inside a data folder a sign-in has opened, so a letter kept by Clarke is never plaintext on disk.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)

from clarke_desktop.config import Settings
from clarke_desktop.identity import sealed
from clarke_desktop.schemas import ClinicalDocument, Demographics, PatientContext
from clarke_desktop.uk_format import local_time, nhs_number, uk_date

DEMO_MARKING = "DEMO MODEL \u2014 NOT FOR CLINICAL USE"
NHS_BLUE = colors.HexColor("#005EB8")

_FONT_CANDIDATES = [
    # (regular, bold) — a Unicode TrueType font so drug names, µ, ≥ and accents print.
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts", "arial.ttf"),
        os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts", "arialbd.ttf"),
    ),
    ("/System/Library/Fonts/Supplemental/Arial.ttf", "/System/Library/Fonts/Supplemental/Arial Bold.ttf"),
]


@dataclass(frozen=True)
class SignatureInfo:
    signed_by: str
    signed_at: str  # ISO timestamp
    version: int
    kind: str = "original"  # original | addendum


def _register_fonts() -> tuple[str, str]:
    if "ClarkeSans" in pdfmetrics.getRegisteredFontNames():
        return "ClarkeSans", "ClarkeSans-Bold"
    bundled = Path(reportlab.__file__).parent / "fonts"
    candidates = [*_FONT_CANDIDATES, (str(bundled / "Vera.ttf"), str(bundled / "VeraBd.ttf"))]
    for regular, bold in candidates:
        if Path(regular).is_file() and Path(bold).is_file():
            pdfmetrics.registerFont(TTFont("ClarkeSans", regular))
            pdfmetrics.registerFont(TTFont("ClarkeSans-Bold", bold))
            pdfmetrics.registerFontFamily(
                "ClarkeSans",
                normal="ClarkeSans",
                bold="ClarkeSans-Bold",
                italic="ClarkeSans",
                boldItalic="ClarkeSans-Bold",
            )
            return "ClarkeSans", "ClarkeSans-Bold"
    return "Helvetica", "Helvetica-Bold"  # pragma: no cover - reportlab always ships Vera


def _date(value: str | None) -> str:
    return uk_date(value, "not recorded")


def _text(value: str) -> str:
    """Escape for reportlab markup; keep line breaks."""
    return escape(value).replace("\n", "<br/>")


class _Styles:
    def __init__(self, regular: str, bold: str) -> None:
        base = {"fontName": regular, "fontSize": 10.5, "leading": 14}
        self.body = ParagraphStyle("body", **base, spaceAfter=5)
        self.small = ParagraphStyle("small", fontName=regular, fontSize=9, leading=11.5)
        self.head_right = ParagraphStyle(
            "head_right", fontName=regular, fontSize=9, leading=11.5, alignment=TA_RIGHT
        )
        self.hospital = ParagraphStyle(
            "hospital", fontName=bold, fontSize=13, leading=16, alignment=TA_RIGHT, textColor=NHS_BLUE
        )
        self.heading = ParagraphStyle(
            "heading", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=3, textColor=NHS_BLUE
        )
        self.re_line = ParagraphStyle(
            "re", fontName=bold, fontSize=10.5, leading=14, spaceBefore=6, spaceAfter=6
        )
        self.demo = ParagraphStyle(
            "demo",
            fontName=bold,
            fontSize=10,
            leading=13,
            textColor=colors.white,
            backColor=colors.red,
            borderPadding=4,
        )


def _page_canvas_factory(regular: str, bold: str, demo: bool, footer_left: str) -> type[rl_canvas.Canvas]:
    """A canvas that defers each page so the footer can say "Page x of y"."""

    class NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]  # reportlab ships no type information
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._saved_pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._saved_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved_pages)
            for state in self._saved_pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, _ = A4
            self.setFont(regular, 8.5)
            self.setFillColor(colors.grey)
            self.drawString(20 * mm, 12 * mm, footer_left)
            self.drawRightString(width - 20 * mm, 12 * mm, f"Page {self._pageNumber} of {total}")
            if demo:
                self.setFillColor(colors.red)
                self.setFont(bold, 9)
                self.drawCentredString(width / 2, 6 * mm, DEMO_MARKING)
                self.drawCentredString(width / 2, A4[1] - 8 * mm, DEMO_MARKING)

    return NumberedCanvas


def render_letter_pdf(
    document: ClinicalDocument,
    out_path: Path,
    *,
    settings: Settings,
    context: PatientContext | None = None,
    signature: SignatureInfo | None = None,
    demo: bool | None = None,
) -> Path:
    """Write the letter to `out_path` (atomically; sealed inside a signed-in data folder) and
    return it. `demo` defaults to whether the document's model is the embedded stand-in."""
    data = letter_pdf_bytes(document, settings=settings, context=context, signature=signature, demo=demo)
    out_path = Path(out_path)
    sealed.write_bytes(out_path, data)
    return out_path


def letter_pdf_bytes(
    document: ClinicalDocument,
    *,
    settings: Settings,
    context: PatientContext | None = None,
    signature: SignatureInfo | None = None,
    demo: bool | None = None,
) -> bytes:
    """The letter as PDF bytes, built in memory (no temporary file)."""
    regular, bold = _register_fonts()
    styles = _Styles(regular, bold)
    demo = bool(document.model and document.model.demo) if demo is None else demo
    demographics = context.demographics if context else None
    letterhead = settings.letterhead
    clinician = settings.clinician

    # The record may have been unreachable: say so rather than print an empty name.
    patient = document.patient_name.strip() or "name not recorded"
    story: list[Flowable] = []
    if demo:
        story.append(
            Paragraph(_text(f"{DEMO_MARKING}: drafted by an embedded demonstration model."), styles.demo)
        )
        story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(_text(letterhead.hospital), styles.hospital))
    head_lines = [letterhead.department, *letterhead.address]
    if letterhead.phone:
        head_lines.append(f"Tel: {letterhead.phone}")
    story.append(Paragraph(_text("\n".join(line for line in head_lines if line)), styles.head_right))
    story.append(Spacer(1, 6 * mm))

    story.append(Paragraph(_text(f"Date: {_date(document.letter_date)}"), styles.body))
    addressee_lines = _addressee_lines(document, demographics)
    story.append(Paragraph(_text("\n".join(addressee_lines)), styles.body))
    story.append(Spacer(1, 3 * mm))
    salutation = document.salutation or _default_salutation(addressee_lines)
    story.append(Paragraph(_text(salutation), styles.body))

    re_line = f"Re: {patient}, DOB {_date(document.patient_dob)}, NHS No. {nhs_number(document.nhs_number)}"
    address = demographics.address if demographics and demographics.address else None
    story.append(Paragraph(_text(re_line + (f"\n{address}" if address else "")), styles.re_line))

    not_written = [s.heading for s in document.sections if not s.content.strip()]
    for section in document.sections:
        if not section.content.strip():
            continue  # never an empty heading: the sections not written are named below
        block = [Paragraph(_text(section.heading), styles.heading)]
        for para in _paragraphs(section.content):
            block.append(Paragraph(_text(para), styles.body))
        story.append(KeepTogether(block[:2]) if len(block) > 1 else block[0])
        story.extend(block[2:])

    if not_written:
        story.append(Paragraph(_text(f"Not written: {', '.join(not_written)}."), styles.body))

    medications_section = any(s.key == "medications" and s.content.strip() for s in document.sections)
    if document.medications_list and not medications_section:  # one medications block, never two
        story.append(Paragraph("Current medications", styles.heading))
        story.append(
            ListFlowable(
                [
                    ListItem(Paragraph(_text(m), styles.body), leftIndent=12)
                    for m in document.medications_list
                ],
                bulletType="bullet",
                start="\u2022",
                leftIndent=12,
                bulletFontName=regular,
            )
        )

    story.append(Spacer(1, 6 * mm))
    cc = f"cc: {patient} (patient)" + (f", {address}" if address else "")
    # The cc line stays with the signature: alone at the top of a page it reads as a stray line.
    story.append(
        KeepTogether(
            [*_signature_block(document, settings, signature, styles), Spacer(1, 5 * mm),
             Paragraph(_text(cc), styles.small)]
        )
    )  # fmt: skip

    footer = f"{patient} \u00b7 NHS No. {nhs_number(document.nhs_number)}"
    if signature is None:
        footer += " \u00b7 DRAFT"
    canvasmaker = _page_canvas_factory(regular, bold, demo, footer)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=20 * mm,
        title=f"Clinic letter - {document.consultation_id}"
        + (f" (signed version {signature.version})" if signature else " (draft)"),
        author=clinician.name,
        subject="Clinic letter",
        creator="Clarke Desktop",
    )
    doc.build(story, canvasmaker=canvasmaker)
    return buffer.getvalue()


def _addressee_lines(document: ClinicalDocument, demographics: Demographics | None) -> list[str]:
    lines: list[str] = []
    if document.addressee:
        lines.extend(
            line.strip() for line in document.addressee.replace(", ", "\n").splitlines() if line.strip()
        )
    elif demographics is not None:
        for value in (demographics.gp_name, demographics.gp_practice, demographics.gp_address):
            if value:
                lines.extend(v.strip() for v in value.split("\n") if v.strip())
    if (
        document.doc_type != "patient"  # a letter to the patient goes to their home, not the practice
        and demographics is not None
        and demographics.gp_practice
        and demographics.gp_practice not in " ".join(lines)
    ):
        lines.append(demographics.gp_practice)
    return lines or ["The patient's General Practitioner"]


def _default_salutation(addressee_lines: list[str]) -> str:
    first = addressee_lines[0]
    return f"Dear {first}," if first.lower().startswith("dr") else "Dear Colleague,"


def _paragraphs(content: str) -> list[str]:
    parts = [p.strip() for p in content.replace("\r\n", "\n").split("\n\n")]
    return [p for p in parts if p] or [""]


def _signature_block(
    document: ClinicalDocument, settings: Settings, signature: SignatureInfo | None, styles: _Styles
) -> list[Flowable]:
    clinician = settings.clinician
    name = signature.signed_by if signature else clinician.name
    lines = ["Yours sincerely,", "", name]  # one signature: the signer's name and role, once
    role = ", ".join(v for v in (clinician.title, clinician.specialty) if v)
    if role:
        lines.append(role)
    if clinician.registration:
        lines.append(clinician.registration)
    block = [Paragraph(_text("\n".join(lines)), styles.body)]
    if signature:
        when = local_time(signature.signed_at, zone=True)  # the local clock, with its zone (GMT, BST)
        label = "Addendum electronically signed" if signature.kind == "addendum" else "Electronically signed"
        block.append(
            Paragraph(
                _text(f"{label} by {signature.signed_by} on {when}"),  # the version is in the metadata
                styles.small,
            )
        )
    else:
        block.append(Paragraph(_text("DRAFT \u2014 not signed"), styles.small))
    return block


if sys.platform == "win32":  # pragma: no cover
    _FONT_CANDIDATES.insert(0, _FONT_CANDIDATES.pop(1))
