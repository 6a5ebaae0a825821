"""The clinic flow through the real window and the real ConsultationService (FHIR store, app store,
pipeline, letter writer, discrepancies, fact check, sign-off, PDF, write-back) with a scripted
language model in place of the GGUF, so the glue is checked in seconds. The same flow with the
real embedded model is test_full_flow.py (slow)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripted_engine import ScriptedEngine  # noqa: E402

pytestmark = pytest.mark.gui


def _reply(turns) -> str:
    prompt = turns[-1].text
    if "clinical_flags" in prompt or "JSON" in prompt:
        return json.dumps({"clinical_flags": ["HbA1c rising despite metformin"], "summary": "T2DM review."})
    if "two short sentences" in prompt:
        return "Your sugar levels have risen. We will add a second tablet."
    return "Mrs Thompson reports tiredness and nocturia. HbA1c has risen to 58 mmol/mol. Metformin 500 mg twice daily."


@pytest.fixture
def window(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window
    from clarke_desktop.pipeline import ConsultationPipeline
    from clarke_desktop.pipeline.components import default_components
    from clarke_desktop.session.service import ConsultationService
    from clarke_desktop.store import AppStore

    backend = ConsultationService()
    engine = ScriptedEngine(default=_reply, demo=True, name="scripted demo")
    components = dataclasses.replace(
        default_components(backend._settings), engine=lambda role, attempt: engine
    )
    backend._pipeline = ConsultationPipeline(
        components, settings=backend._settings, store=AppStore(), actor=backend.actor
    )
    w = build_window(backend)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    yield w
    w.runner.shutdown()
    backend.close()


def test_flow_through_the_core_with_a_scripted_model(window, qtbot):
    from clarke_desktop.fhir.local import LocalFhirClient
    from clarke_desktop.paths import fhir_db_path

    w = window
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=600_000)
    qtbot.mouseClick(w.dashboard.rows["pt-001"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.patient_screen.context is not None, timeout=60_000)
    w.flow.begin_consultation()
    qtbot.mouseClick(w.consultation.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Mrs Thompson" in w.consultation.transcript.toPlainText(), timeout=10_000)
    w.consultation.doc_type.setCurrentIndex(w.consultation.doc_type.findData("patient"))
    qtbot.keyClick(w, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: w.review.document is not None or w.processing.retry_button.isVisible(), timeout=300_000
    )
    assert w.review.document is not None, w.processing._alerts.itemAt(0).widget().accessibleName()
    doc = w.review.document
    assert doc.doc_type == "patient" and doc.model.demo and w.demo_banner.isVisibleTo(w)
    assert doc.discrepancies, "the demo consultation contradicts the record (HbA1c 58 vs 55)"
    assert doc.fact_check
    assert "HbA1c rising despite metformin" in w.patient_screen.context.clinical_flags

    narrative = [s.key for s in doc.sections if s.kind == "narrative"]
    edit_key, regen_key = narrative[0], narrative[1]
    w.review.cards[edit_key].editor.setPlainText("Reviewed in clinic. EDITED BY CLINICIAN.")
    w.review.cards[regen_key].instruction.setText("Write it in two short sentences.")
    qtbot.mouseClick(w.review.cards[regen_key].regen_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: f"regen:{regen_key}" not in w.review.busy_reasons, timeout=120_000)
    assert w.review.cards[regen_key].text() == "Your sugar levels have risen. We will add a second tablet."

    for i, item in enumerate(list(w.review.items.values())):
        if i % 2:
            qtbot.mouseClick(item.keep_button, Qt.MouseButton.LeftButton)
        else:
            item.reason.setText("Checked with the patient")
            if item.why is not None:  # a red conflict needs a specific reason
                item.why.setCurrentIndex(1)
            qtbot.mouseClick(item.dismiss_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.review.sign_button.isEnabled(), timeout=60_000)
    qtbot.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=120_000)

    result = w.signed.result
    assert result.pdf_path.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(str(result.pdf_path)).pages).replace("\n", " ")
    assert "EDITED BY CLINICIAN" in text and "We will add a second tablet" in text
    client = LocalFhirClient(fhir_db_path())
    try:
        ref = client.read("DocumentReference", result.document_reference.split("/", 1)[1])
    finally:
        client.close()
    assert ref["subject"]["reference"] == "Patient/pt-001"
    # the store's audit trail has every step
    latest = w.backend._store.latest_letter(w.flow.consultation_id)
    assert all(d.resolution is not None for d in latest.document.discrepancies)
