"""The letter PDF (text read back with pypdf, pages rendered by pdftoppm) and the write-back resources."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import workflow_samples as samples
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.documentreference import DocumentReference
from pypdf import PdfReader

from clarke_desktop.config import Settings
from clarke_desktop.fhir.client import FhirInvalid
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.pdf import DEMO_MARKING, SignatureInfo, render_letter_pdf
from clarke_desktop.schemas import DocumentSection
from clarke_desktop.writeback import SignedLetter, build_composition, build_document_reference, write_back
from local_fhir import Store


def _text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _settings() -> Settings:
    settings = Settings()
    settings.clinician.name = "Dr S. Chen"
    settings.clinician.title = "Consultant Diabetologist"
    settings.clinician.gmc_number = "7654321"
    settings.letterhead.hospital = "St Elsewhere NHS Trust"
    return settings


def test_letter_has_every_nhs_element(tmp_path: Path) -> None:
    doc = samples.document("cons-1")
    pdf = render_letter_pdf(
        doc,
        tmp_path / "letter.pdf",
        settings=_settings(),
        context=samples.context(),
        signature=SignatureInfo("Dr S. Chen", "2026-02-13T14:08:00Z", 3),
    )
    text = _text(pdf)
    for expected in (
        "St Elsewhere NHS Trust",  # letterhead
        "Tel: 020 7946 0000",
        "Date: 13/02/2026",
        "Dr R. Patel",  # addressee GP and practice
        "Riverside Medical Centre",
        "Re: Mrs Margaret Thompson, DOB 14/03/1958, NHS No. 943 476 5829",
        "History of presenting complaint",
        "Assessment and plan",
        "Repeat HbA1c in three months.",
        "eGFR 52 mL/min/1.73m², <60.",  # markup characters and units print as written
        "Current medications",
        "Gliclazide 40 mg once daily (new)",
        "Yours sincerely,",
        "Consultant Diabetologist",
        "GMC 7654321",
        "Electronically signed by Dr S. Chen",
        "cc: Mrs Margaret Thompson (patient), 12 Oak Lane, London, SE1 4AB",
        "Page 1 of 1",
        DEMO_MARKING,
    ):
        assert expected in text, expected


def test_no_demo_marking_for_installed_models_and_page_count_for_long_letters(tmp_path: Path) -> None:
    doc = samples.document("cons-2", demo=False)
    doc.sections[0].content = "\n\n".join(f"Paragraph {i}: " + "detail " * 60 for i in range(30))
    pdf = render_letter_pdf(doc, tmp_path / "long.pdf", settings=_settings(), context=samples.context())
    reader = PdfReader(pdf)
    pages = len(reader.pages)
    assert pages >= 2
    text = _text(pdf)
    assert DEMO_MARKING not in text and "DRAFT" in text
    for n in range(1, pages + 1):
        assert f"Page {n} of {pages}" in reader.pages[n - 1].extract_text()
    assert "Paragraph 29:" in text  # nothing dropped at the end


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pdftoppm_renders_each_page(tmp_path: Path) -> None:
    pdf = render_letter_pdf(samples.document("cons-3"), tmp_path / "l.pdf", settings=_settings())
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == len(PdfReader(pdf).pages) and all(p.stat().st_size > 1000 for p in pngs)


class CountingClient(LocalFhirClient):
    """The real local store, counting how the write-back talks to it."""

    def __init__(self, path: Path) -> None:
        super().__init__(Store(path))
        self.calls: list[str] = []

    def create(self, resource: dict) -> dict:
        self.calls.append("create")
        return super().create(resource)

    def transaction(self, bundle: dict) -> dict:
        self.calls.append("transaction")
        return super().transaction(bundle)


def test_write_back_resources_are_valid_linked_and_written_in_one_transaction(tmp_path: Path) -> None:
    doc = samples.document("cons-4")
    pdf = render_letter_pdf(doc, tmp_path / "l.pdf", settings=_settings())
    fhir = CountingClient(tmp_path / "fhir.sqlite3")
    letter = SignedLetter(doc, 2, "pt-001", "Dr S. Chen", "2026-02-13T14:08:00Z", _settings().clinician)
    result = write_back(fhir, letter, pdf)
    assert fhir.calls == ["transaction"]  # all or nothing: never a letter without its composition
    encounter = fhir.read(*result.encounter.split("/"))
    doc_ref = fhir.read(*result.document_reference.split("/"))
    composition = fhir.read(*result.composition.split("/"))
    assert encounter["subject"]["reference"] == "Patient/pt-001" and encounter["status"] == "finished"

    DocumentReference.model_validate(doc_ref)
    attachment = doc_ref["content"][0]["attachment"]
    data = pdf.read_bytes()
    assert base64.b64decode(attachment["data"]) == data
    assert attachment["size"] == len(data)
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(data).digest()
    assert doc_ref["status"] == "current" and doc_ref["author"][0]["display"] == "Dr S. Chen"
    assert doc_ref["author"][0]["identifier"]["value"] == "7654321"
    assert doc_ref["context"]["encounter"][0]["reference"] == result.encounter  # urn:uuid rewritten

    Composition.model_validate(composition)
    assert composition["encounter"]["reference"] == result.encounter
    assert composition["subject"]["reference"] == "Patient/pt-001"
    titles = [s["title"] for s in composition["section"]]
    assert titles == [s.heading for s in doc.sections] + ["Current medications"]
    assert "&lt;60" in composition["section"][1]["text"]["div"]
    assert composition["relatesTo"][0]["targetReference"]["reference"] == result.document_reference


def test_invalid_resource_is_refused_before_sending(tmp_path: Path) -> None:
    doc = samples.document("cons-5")
    pdf = render_letter_pdf(doc, tmp_path / "l.pdf", settings=_settings())
    letter = SignedLetter(
        document=doc,
        version=1,
        patient_id="pt-001",
        encounter_ref="Encounter/e1",
        signed_by="Dr S. Chen",
        signed_at="13 Feb 2026",  # not a FHIR instant
        clinician=_settings().clinician,
    )
    with pytest.raises(FhirInvalid, match="DocumentReference"):
        build_document_reference(letter, pdf)
    comp = build_composition(replace(letter, signed_at="2026-02-13T14:08:00Z"))
    assert comp["status"] == "final"


def test_letter_without_record_says_what_is_missing(tmp_path: Path) -> None:
    doc = samples.document("cons-6").model_copy(
        update={"patient_name": "", "patient_dob": "", "nhs_number": None}
    )
    text = _text(render_letter_pdf(doc, tmp_path / "l.pdf", settings=_settings(), context=None))
    assert "Re: name not recorded, DOB not recorded, NHS No. not recorded" in text


def test_patient_letter_is_addressed_home_without_the_practice_line() -> None:
    from clarke_desktop.pdf.letter import _addressee_lines
    from clarke_desktop.schemas import Demographics

    demo = Demographics(
        name="Mrs M Thompson", date_of_birth="1959-03-14", gp_practice="Riverside Medical Centre"
    )
    to_patient = samples.document("cons-6").model_copy(
        update={"doc_type": "patient", "addressee": "Mrs M Thompson\n12 Oak Lane"}
    )
    assert _addressee_lines(to_patient, demo) == ["Mrs M Thompson", "12 Oak Lane"]
    to_gp = to_patient.model_copy(update={"doc_type": "clinic", "addressee": "Dr R Patel"})
    assert _addressee_lines(to_gp, demo) == ["Dr R Patel", "Riverside Medical Centre"]


def test_one_medications_block_one_signature_and_no_version_on_the_page(tmp_path: Path) -> None:
    doc = samples.document("cons-1")
    doc.sections.append(
        DocumentSection(
            key="medications",
            heading="Current medications",
            kind="facts",
            content="Metformin 1 g twice daily",
        )
    )
    doc.sign_off = "Dr S. Chen\nConsultant Diabetologist"  # what the writer puts in the document
    pdf = render_letter_pdf(
        doc, tmp_path / "letter.pdf", settings=_settings(), context=samples.context(),
        signature=SignatureInfo("Dr S. Chen", "2026-02-13T14:08:00Z", 6),
    )  # fmt: skip
    text = _text(pdf)
    assert text.count("Current medications") == 1  # the record's section, not a second list
    assert text.count("Consultant Diabetologist") == 1 and "version" not in text.lower()
    assert "(signed version 6)" in PdfReader(str(pdf)).metadata.title  # kept for the record


def test_the_signed_file_name_has_no_version() -> None:
    from clarke_desktop.pipeline.finalise import letter_filename

    assert letter_filename("cons-1", 6, "2026-02-13T14:08:00Z") == "cons-1-signed-20260213140800.pdf"


def test_the_cc_line_never_stands_alone_on_a_page(tmp_path: Path) -> None:
    """Letters of every length around a page break: the cc line is on the page that is signed."""
    orphaned = []
    for lines in (*range(8, 16), *range(46, 54)):  # where the signature ends a page (12 and 50 did)
        doc = samples.document("cons-1")
        doc.sections[2].content = "\n\n".join(f"Plan item {i}: review and continue." for i in range(lines))
        pdf = render_letter_pdf(
            doc, tmp_path / f"letter-{lines}.pdf", settings=_settings(), context=samples.context(),
            signature=SignatureInfo("Dr S. Chen", "2026-02-13T14:08:00Z", 1),
        )  # fmt: skip
        for page in PdfReader(str(pdf)).pages:
            text = page.extract_text()
            if "cc: " in text and "Yours sincerely" not in text:
                orphaned.append(lines)
    assert orphaned == []
