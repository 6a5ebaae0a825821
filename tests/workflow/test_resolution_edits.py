"""Discrepancy actions act on the letter: "use the record's value" and "use what was said" rewrite
the value where the letter gives it, "keep both" writes agreed wording, each is saved as a version,
audited with the sections it changed, and can be undone until sign-off (never over words the
clinician typed since)."""

from __future__ import annotations

from pathlib import Path

import pytest
import workflow_samples as samples

from clarke_desktop.errors import ClarkeError
from clarke_desktop.letters.discrepancies import detect_discrepancies
from clarke_desktop.schemas import Resolution, Transcript
from clarke_desktop.store import AppStore
from clarke_desktop.store.audit import AuditEvent

SAID = (
    "Good morning Mrs Thompson. You are still on metformin 500 milligrams twice a day? Yes. "
    "We will repeat the HbA1c in three months."
)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from clarke_desktop.session.service import ConsultationService

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    s = ConsultationService(actor="Dr S. Chen")
    yield s
    s.close()


def _draft() -> tuple[str, str]:
    """A saved draft whose letter repeats the dose said (500 mg) that the record contradicts (1 g)."""
    transcript = Transcript(text=SAID, origin="typed")
    context = samples.context()
    (dose,) = [d for d in detect_discrepancies(transcript, context) if d.kind == "dose"]
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, context)
        store.save_transcript(cid, transcript)
        doc = samples.document(cid, discrepancy=False)
        doc.sections[0].content = "She takes metformin 500 mg twice daily and feels tired."
        doc.discrepancies = [dose]
        store.save_generated_letter(cid, doc)
    return cid, dose.id


def test_the_rules_name_both_values(service) -> None:
    transcript = Transcript(text=SAID, origin="typed")
    (dose,) = [d for d in detect_discrepancies(transcript, samples.context()) if d.kind == "dose"]
    assert (dose.said_value, dose.record_value, dose.subject) == ("500 mg", "1 g", "metformin")


def test_use_the_records_value_rewrites_the_letter_and_undo_restores_it(service) -> None:
    cid, did = _draft()
    doc = service.resolve_discrepancy(cid, did, Resolution(action="use_record"))
    history = doc.sections[0]
    assert history.content == "She takes metformin 1 g twice daily and feels tired."
    assert history.edited_by == "Dr S. Chen"  # the clinician's words now, not the model's
    (res_edit,) = doc.discrepancies[0].resolution.edits
    assert (res_edit.before, res_edit.after, res_edit.section_key) == ("500 mg", "1 g", "history")
    # the fact check follows the new text: "1 g" is now a fact of that section, supported by the record
    assert any(f.text == "1 g" and f.supported for f in doc.fact_check if f.section_key == "history")
    with AppStore() as store:
        latest = store.latest_letter(cid)
        assert latest is not None and latest.document == doc
        entry = store.audit_entries(cid)[-1]
        assert entry.event == AuditEvent.DISCREPANCY_RESOLVED and entry.data["sections_changed"] == [
            "history"
        ]

    undone = service.undo_resolution(cid, did)
    assert undone.sections[0].content == "She takes metformin 500 mg twice daily and feels tired."
    assert undone.discrepancies[0].resolution is None
    with AppStore() as store:
        assert store.audit_entries(cid)[-1].event == AuditEvent.DISCREPANCY_REOPENED


def test_use_what_was_said_when_the_letter_already_says_it_changes_nothing(service) -> None:
    cid, did = _draft()
    doc = service.resolve_discrepancy(cid, did, Resolution(action="use_said"))
    assert doc.sections[0].content == "She takes metformin 500 mg twice daily and feels tired."
    assert doc.discrepancies[0].resolution.action == "use_said" and not doc.discrepancies[0].resolution.edits


def test_keep_both_writes_the_agreed_wording_after_the_mention(service) -> None:
    cid, did = _draft()
    doc = service.resolve_discrepancy(cid, did, Resolution(action="keep_both"))
    assert doc.sections[0].content == (
        "She takes metformin 500 mg twice daily and feels tired. Metformin: the patient reports "
        "taking 500 mg; the record gives a dose of 1 g."
    )


def test_undo_never_overwrites_words_typed_since(service) -> None:
    cid, did = _draft()
    service.resolve_discrepancy(cid, did, Resolution(action="use_record"))
    service.save_section(cid, "history", "Metformin reviewed; dose to be confirmed with the GP.")
    with pytest.raises(ClarkeError, match="edited after this was resolved"):
        service.undo_resolution(cid, did)
    with AppStore() as store:
        latest = store.latest_letter(cid)
        assert latest is not None
        assert latest.document.sections[0].content == "Metformin reviewed; dose to be confirmed with the GP."
        assert latest.document.discrepancies[0].resolution is not None  # still resolved
