"""The whole clinic flow through the real window and the real core, with the embedded models:
open demo patient pt-001, use the demo consultation transcript, write the letter, edit one
section, regenerate another, resolve every discrepancy, sign off; the PDF exists and the FHIR
DocumentReference is written. The event loop is probed while the pipeline runs: the figure is
recorded (printed and attached to the report), not asserted against a wall-clock threshold;
bench/gui_latency.py compares it with the 100 ms target.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytestmark = [pytest.mark.gui, pytest.mark.slow]

LETTER_TIMEOUT_MS = 1_500_000  # the embedded model on a shared 2-core CPU is slow, not stuck


@pytest.fixture
def real_window(styled_app, qtbot, tmp_path, monkeypatch):
    """The real window on a set-up installation of its own (encrypted), the clinician signed in."""
    import accounts

    from clarke_desktop.gui.app import build_window
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    data = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(data))
    accounts.set_up(data)
    identity = Identity()

    calls: dict[str, int] = {}

    class ThreadNoting(ConsultationService):
        def draft(self, *a, **k):
            calls["draft"] = threading.get_ident()
            return super().draft(*a, **k)

        def sign_off(self, *a, **k):
            calls["sign_off"] = threading.get_ident()
            return super().sign_off(*a, **k)

    w = build_window(ThreadNoting(signed_in=accounts.signed_in(data), identity=identity))
    w.calls = calls
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    yield w
    w.runner.shutdown()
    w.backend.close()
    identity.close()


def test_clinic_day_from_dashboard_to_signed_letter(real_window, qtbot, record_property, dialogs):
    import io

    import accounts
    from gui_probe import LoopLatencyProbe

    from clarke_desktop.fhir.local import LocalFhirClient
    from clarke_desktop.identity import sealed
    from clarke_desktop.paths import fhir_db_path

    w = real_window
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=300_000)  # first start seeds the store
    qtbot.mouseClick(w.dashboard.rows["pt-001"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.patient_screen.context is not None, timeout=60_000)
    ctx = w.patient_screen.context
    assert ctx.allergies, "pt-001's penicillin allergy must be on screen"
    qtbot.keyClick(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # start consultation
    assert w.current_page() == "consultation"
    qtbot.mouseClick(w.consultation.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Mrs Thompson" in w.consultation.transcript.toPlainText(), timeout=10_000)
    w.consultation.aside.setPlainText("Feet: monofilament sensation intact.")
    # The letter to the patient has two narrative sections (the clinic letter three): the same
    # code path with less embedded-model time on a CPU.
    w.consultation.doc_type.setCurrentIndex(w.consultation.doc_type.findData("patient"))

    probe = LoopLatencyProbe()
    probe.start()
    qtbot.keyClick(w, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # write the letter
    qtbot.waitUntil(
        lambda: w.review.document is not None or w.processing.retry_button.isVisible(),
        timeout=LETTER_TIMEOUT_MS,
    )
    latency = probe.stop()
    print("event loop while the pipeline ran:", json.dumps(latency))
    record_property("gui_latency_during_pipeline", json.dumps(latency))
    assert w.review.document is not None, w.processing._alerts.itemAt(0).widget().accessibleName()
    assert w.calls["draft"] != threading.get_ident()  # the pipeline ran off the GUI thread
    assert latency["ticks"] > 0  # the loop kept turning while the letter was written
    doc = w.review.document
    assert doc.doc_type == "patient"
    assert doc.model is not None and doc.model.demo
    assert w.demo_banner.isVisibleTo(w)

    # Called away mid-review: the window locks, and only the clinician's password opens it again.
    w.lock("Locked.")
    assert w.is_locked() and w._lock_screen.geometry() == w.rect()
    w._lock_screen.password.setText(accounts.CLINICIAN_PASSWORD)
    qtbot.mouseClick(w._lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_locked(), timeout=30_000)
    assert w.current_page() == "review" and w.review.document is doc

    narrative = [s.key for s in doc.sections if s.kind == "narrative" and s.editable]
    assert len(narrative) >= 2, [s.key for s in doc.sections]
    edit_key, regen_key = narrative[0], narrative[1]
    edited = "Reviewed in clinic today. EDITED BY CLINICIAN."
    w.review.cards[edit_key].editor.setPlainText(edited)
    before = w.review.cards[regen_key].text()
    w.review.cards[regen_key].instruction.setText("Write it in two short sentences.")
    qtbot.mouseClick(w.review.cards[regen_key].regen_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: f"regen:{regen_key}" not in w.review.busy_reasons, timeout=LETTER_TIMEOUT_MS)
    note = w.review.progress_note.text()
    versions = w.backend._store.letter_versions(w.flow.consultation_id)
    regen = [v for v in versions if v.kind == "regenerate" and v.note == regen_key]
    if "Could not regenerate" in note:
        # The embedded base model mostly copies its prompt back: that is refused with the reason,
        # and the section keeps its text (nothing is stored as a new version).
        assert "instead of writing" in note and "original text is kept" in note, note
        assert w.review.cards[regen_key].text() == before and not regen
    else:
        # Otherwise the store holds a "regenerate" version of that section, by the embedded model.
        regenerated = w.review.cards[regen_key].text()
        assert regenerated.strip() and regen, [(v.kind, v.note) for v in versions]
        section = next(s for s in regen[-1].document.sections if s.key == regen_key)
        assert section.content == regenerated and section.generated_by == doc.model.name

    actions = ["use_record", "keep_both", "dismiss"]
    for i, (did, item) in enumerate(list(w.review.items.items())):
        action = actions[i % 3]
        if action == "dismiss":
            item.reason.setText("Checked with the patient in clinic")
            if item.why is not None:  # a red conflict needs a specific reason
                item.why.setCurrentIndex(1)
            qtbot.mouseClick(item.dismiss_button, Qt.MouseButton.LeftButton)
        else:
            choice = item.record_button if action == "use_record" else None
            qtbot.mouseClick(choice or item.keep_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda did=did: w.review.items[did].d.resolution is not None, timeout=30_000)
    # A section the demo model's text was refused for is empty: the clinician types it (a letter
    # is never signed with an empty section: the sign button waits for it).
    for key in narrative:
        if not w.review.cards[key].text().strip():
            w.review.cards[key].editor.setPlainText(
                "Typed by the clinician after the demo model's text was refused."
            )
    w.review.flush_edits()
    qtbot.waitUntil(lambda: w.review.sign_button.isEnabled(), timeout=30_000)

    dialogs.password = accounts.CLINICIAN_PASSWORD  # typed again at the preview
    qtbot.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=120_000)
    assert dialogs.asked_password
    assert w.calls["sign_off"] != threading.get_ident()
    result = w.signed.result
    pdf = Path(result.pdf_path)
    assert pdf.is_file() and not pdf.read_bytes().startswith(b"%PDF-")  # kept sealed at rest
    pdf_bytes = sealed.read_bytes(pdf)
    assert pdf_bytes[:5] == b"%PDF-"
    assert result.document_reference.startswith("DocumentReference/"), result.document_reference

    from pypdf import PdfReader

    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages)
    assert "EDITED BY CLINICIAN" in pdf_text.replace("\n", " ")

    client = LocalFhirClient(fhir_db_path())
    try:
        ref = client.read("DocumentReference", result.document_reference.split("/", 1)[1])
    finally:
        client.close()
    assert ref["subject"]["reference"] == "Patient/pt-001"
    assert ref["status"] == "current"
    qtbot.waitUntil(
        lambda: (
            w.signed._pages.count() > 0
            and w.signed._pages.itemAt(0).widget().pixmap() is not None
            and not w.signed._pages.itemAt(0).widget().pixmap().isNull()
        ),
        timeout=60_000,
    )

    qtbot.keyClick(w, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # next patient
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=10_000)
    qtbot.waitUntil(
        lambda: w.dashboard.rows["pt-001"].status_badge.text().startswith("Signed off"), timeout=30_000
    )
