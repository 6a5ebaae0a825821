"""The sign-off preview prints the draft with the clinician's edits exactly as it would be signed,
names the signer and the destination, and changes nothing: no signature, export or audit entry."""

from __future__ import annotations

from pathlib import Path

import workflow_samples as samples
from pypdf import PdfReader

from clarke_desktop.config import Settings
from clarke_desktop.pipeline.finalise import preview_sign_off
from clarke_desktop.store import AppStore


def test_preview_prints_the_edited_draft_and_changes_nothing(store: AppStore, tmp_path: Path) -> None:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    store.save_context(cid, samples.context())
    store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
    audit_before = len(store.audit_entries(cid))
    edited = store.latest_letter(cid).document.model_copy(deep=True)
    edited.sections[0].content = "Edited on screen, not yet saved: TIRED FOR THREE MONTHS."
    settings = Settings()
    settings.clinician.title = "Consultant Physician"
    settings.clinician.gmc_number = "7654321"

    preview = preview_sign_off(store, cid, edited, "Dr S. Chen", tmp_path / "preview.pdf", settings=settings)

    text = " ".join(p.extract_text() for p in PdfReader(str(preview.pdf_path)).pages).replace("\n", " ")
    assert "TIRED FOR THREE MONTHS" in text and "Dr S. Chen" in text
    assert preview.signer == "Dr S. Chen, Consultant Physician, GMC 7654321"
    assert (
        preview.destination.startswith("Not written to the record (demo model)")
        or "record" in preview.destination
    )
    assert not store.latest_letter(cid).signed
    assert store.latest_export(cid, store.latest_letter(cid).version) is None
    assert len(store.audit_entries(cid)) == audit_before
