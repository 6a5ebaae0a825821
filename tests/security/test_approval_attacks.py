"""Chart-assistant approvals (issue #16): a proposal's hidden fields are refused with the reason or
shown on the card, a resource changed between display and approval is refused, and what is
written is exactly what was approved. Runs through the consultation service on a real FHIR store
and app store, the model scripted (its proposals are the attack)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scripted_engine import ScriptedEngine

from clarke_desktop.agent.assistant import ProposalError
from clarke_desktop.agent.proposal_policy import canonical_json, resource_digest, without_server_fields
from clarke_desktop.cancel import CancelToken
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.schemas import ModelInfo
from clarke_desktop.store import AppStore, AuditEntry

MODEL_SHA = "5e" * 32
ORDER: dict[str, Any] = {
    "resourceType": "MedicationRequest", "status": "active", "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "319283006",
                                              "display": "Amlodipine 5mg tablets"}]},
    "dosageInstruction": [{"text": "One tablet daily",
                           "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}],
}  # fmt: skip
HIDDEN_DOSE = {"text": "as directed", "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]}
HIDDEN_NOTE = {"text": "Patient may double the dose"}
EXTENSION = {"url": "https://example.org/fhir/dose-override", "valueQuantity": {"value": 50, "unit": "mg"}}
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Amlodipine 5 mg</div>'}


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writable_fhir: LocalFhirClient) -> Iterator[Any]:
    from clarke_desktop.session.service import ConsultationService

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    backend = ConsultationService(actor="Dr Sarah Chen")
    backend._fhir = lambda: LocalFhirClient(writable_fhir.store)  # the test's own FHIR store
    backend.engine = ScriptedEngine([])
    backend.engine.info = ModelInfo(name="MedGemma 4B", role="ehr_agent", file="agent.gguf", sha256=MODEL_SHA)
    backend.pipeline = lambda: SimpleNamespace(engine=lambda role: backend.engine)
    yield backend
    backend.close()


def _ask(service: Any, *resources: dict[str, Any]) -> Any:
    service.engine.replies = [
        *(json.dumps({"action": "propose_write", "resource_type": r["resourceType"], "resource": r})
          for r in resources),
        json.dumps({"action": "finish", "answer": "Proposed for your approval."}),
    ]  # fmt: skip
    return service.ask_assistant("pt-001", "Start amlodipine", lambda _step: None, CancelToken())


def _events(name: str) -> list[AuditEntry]:
    with AppStore() as store:
        return [e for e in store.audit_entries() if e.event == name]


def _orders(fhir: LocalFhirClient) -> list[dict[str, Any]]:
    return fhir.search_all("MedicationRequest", {"patient": "pt-001"})


def test_hidden_extension_and_narrative_are_refused_with_the_reason(service, writable_fhir) -> None:
    attack = {**copy.deepcopy(ORDER), "extension": [EXTENSION], "text": NARRATIVE,
              "dosageInstruction": [*ORDER["dosageInstruction"], HIDDEN_DOSE], "note": [HIDDEN_NOTE]}  # fmt: skip
    answer = _ask(service, attack)
    [card] = answer.proposals
    assert card.status == "refused"  # shown as refused, never offered for approval
    assert [r.split(":")[0] for r in card.refusals] == [
        "MedicationRequest.extension[0]",
        "MedicationRequest.text",
    ]
    assert "extensions are not accepted" in card.refusals[0] and "narrative" in card.refusals[1]
    before = len(_orders(writable_fhir))
    with pytest.raises(ProposalError, match="refused and cannot be approved"):
        service.decide_proposal("pt-001", card.id, True)
    assert len(_orders(writable_fhir)) == before
    [proposed] = _events("assistant_proposed")
    assert proposed.data["status"] == "refused" and proposed.data["refused_elements"] == [
        "MedicationRequest.extension[0]",
        "MedicationRequest.text",
    ]
    assert proposed.data["model_sha256"] == MODEL_SHA and proposed.data["prompt_version"].startswith(
        "prompts-v"
    )


def test_a_second_dosage_and_a_note_are_every_one_shown_on_the_card(service, writable_fhir) -> None:
    attack = {**copy.deepcopy(ORDER), "dosageInstruction": [*ORDER["dosageInstruction"], HIDDEN_DOSE],
              "note": [HIDDEN_NOTE]}  # fmt: skip
    [card] = _ask(service, attack).proposals
    assert card.status == "pending" and card.refusals == []
    assert "Dosage 1 › Dose: 5 mg" in card.lines and "Dosage 2 › Dose: 50 mg" in card.lines
    assert "Dosage 2: as directed" in card.lines and "Note: Patient may double the dose" in card.lines
    # Not a summary: every value that would be written is on a line of the card.
    text = "\n".join(card.lines)
    for value in (
        "319283006",
        "Amlodipine 5mg tablets",
        "One tablet daily",
        "Patient/pt-001",
        "active",
        "order",
    ):
        assert value in text


def test_a_resource_changed_between_display_and_approval_is_refused(service, writable_fhir) -> None:
    [card] = _ask(service, copy.deepcopy(ORDER)).proposals
    before = len(_orders(writable_fhir))
    held = service._proposals[card.id].proposal
    held.resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 50  # after display
    with pytest.raises(ProposalError, match="changed after it was shown"):
        service.decide_proposal("pt-001", card.id, True)
    # Swapped for a proposal re-sealed with its own digest: still not what the card showed.
    service._proposals[card.id] = service._proposals[card.id]._replace(
        proposal=held.model_copy(update={"digest": resource_digest(held.resource)})
    )
    with pytest.raises(ProposalError, match="changed after it was shown"):
        service.decide_proposal("pt-001", card.id, True)
    assert len(_orders(writable_fhir)) == before  # nothing written
    failed = _events("assistant_refused")
    assert len(failed) == 2 and failed[0].data["reason"] == "changed after it was shown"
    assert failed[0].data["resource_sha256"] == card.digest != failed[0].data["current_sha256"]
    assert _events("assistant_written") == []


def test_the_written_resource_is_the_approved_one(service, writable_fhir) -> None:
    attack = {**copy.deepcopy(ORDER), "dosageInstruction": [*ORDER["dosageInstruction"], HIDDEN_DOSE],
              "note": [HIDDEN_NOTE]}  # fmt: skip
    [card] = _ask(service, attack).proposals
    decided = service.decide_proposal("pt-001", card.id, True)
    assert decided.status == "approved" and decided.digest == card.digest and decided.lines == card.lines
    [written] = _events("assistant_written")
    rtype, _, rid = written.data["resource"].partition("/")
    stored = writable_fhir.read(rtype, rid)
    approved = service._proposals[card.id].proposal.resource
    assert canonical_json(without_server_fields(stored)) == canonical_json(approved)  # byte for byte
    assert resource_digest(without_server_fields(stored)) == card.digest
    assert "Dr Sarah Chen" in stored["meta"]["tag"][0]["display"]
    assert written.actor == "Dr Sarah Chen" and written.data["resource_sha256"] == card.digest
    assert written.data["written_sha256"] == card.digest and written.data["version_id"] == "1"
    assert written.data["model_sha256"] == MODEL_SHA and written.data["prompt_version"].startswith(
        "prompts-v"
    )
    with pytest.raises(ProposalError, match="already applied"):
        service.decide_proposal("pt-001", card.id, True)


def test_an_approval_is_only_for_the_patient_it_was_proposed_for(service, writable_fhir) -> None:
    [card] = _ask(service, copy.deepcopy(ORDER)).proposals
    with pytest.raises(ValueError, match="another patient"):
        service.decide_proposal("pt-002", card.id, True)
    assert _events("assistant_written") == []


def test_invisible_characters_cannot_make_a_line_read_otherwise(service) -> None:
    # U+202E (right-to-left override) shows "5 mg" while the text holds "gm 05".
    trick = {**copy.deepcopy(ORDER), "note": [{"text": "Dose: \u202egm 05"}]}
    [card] = _ask(service, trick).proposals
    assert card.status == "refused"
    assert card.refusals == [
        "MedicationRequest.note[0].text: contains an invisible or control character (U+202E)"
    ]


def test_a_rejection_is_audited_and_writes_nothing(service, writable_fhir) -> None:
    [card] = _ask(service, copy.deepcopy(ORDER)).proposals
    before = len(_orders(writable_fhir))
    service.decide_proposal("pt-001", card.id, False)
    [rejected] = _events("assistant_rejected")
    assert rejected.data["proposal_id"] == card.id and rejected.data["resource_sha256"] == card.digest
    assert len(_orders(writable_fhir)) == before and _events("assistant_written") == []
