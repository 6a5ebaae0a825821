"""A section the clinician writes or edits is theirs and is checked again: it is labelled as edited
by them (in the saved version, hence the audit), its fact check follows the new text, and a
warning that the model left it empty goes once it is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import workflow_samples as samples

from clarke_desktop.store import AppStore

EMPTY_WARNING = (
    "The model repeated its instructions instead of writing 'Assessment and plan'. "
    "The section is empty: write it or regenerate it."
)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from clarke_desktop.session.service import ConsultationService

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    s = ConsultationService(actor="Dr S. Chen")
    yield s
    s.close()


def test_a_written_section_is_labelled_rechecked_and_its_warning_dropped(service) -> None:
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_transcript(cid, samples.transcript())
        doc = samples.document(cid, discrepancy=False)
        plan = next(s for s in doc.sections if s.key == "plan")
        plan.content = ""
        doc.fact_check = [f for f in doc.fact_check if f.section_key != "plan"]
        doc.warnings = [EMPTY_WARNING, "Another warning about the record."]
        store.save_generated_letter(cid, doc)

    saved = service.save_section(
        cid, "plan", "Continue metformin 500 mg twice daily. Start sitagliptin 100 mg."
    )

    plan = next(s for s in saved.sections if s.key == "plan")
    assert plan.edited_by == "Dr S. Chen"
    facts = [f for f in saved.fact_check if f.section_key == "plan"]
    assert {f.text.lower() for f in facts} >= {"metformin", "500 mg", "sitagliptin", "100 mg"}
    assert any(
        f.text.lower() == "sitagliptin" and not f.supported for f in facts
    )  # not in transcript or record
    assert saved.warnings == ["Another warning about the record."]
    with AppStore() as store:
        latest = store.latest_letter(cid)
        assert latest is not None and latest.kind == "edit" and latest.document == saved
        assert store.audit_entries(cid)[-1].actor == "Dr S. Chen"
