"""Required bindings of every R4 resource type, from the official package (value_sets.json): a code
outside its value set is refused on write with the element's path, nothing written; the same
resource with a code from the value set is stored unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_fhir import Store, UnprocessableResource

P = {"reference": "Patient/p1"}
MED = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313782"}]}


def _allergy(status: str) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    return {"resourceType": "AllergyIntolerance", "patient": P,
            "clinicalStatus": {"coding": [{"system": system, "code": status}]}}  # fmt: skip


def _adverse_event(severity: str) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
    return {"resourceType": "AdverseEvent", "actuality": "actual", "subject": P,
            "severity": {"coding": [{"system": system, "code": severity}]}}  # fmt: skip


def _medication_request(intent: str = "order", when: str = "HS") -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": intent, "subject": P,
            "medicationCodeableConcept": MED,
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                                         "when": [when]}}}]}  # fmt: skip


# (valid resource, JSON path to change, wrong value, expression reported)
CASES: list[tuple[dict[str, Any], tuple[Any, ...], Any, str]] = [
    ({"resourceType": "Encounter", "status": "in-progress", "subject": P,
      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
     ("status",), "in-progresss", "Encounter.status"),
    (_medication_request(), ("intent",), "prescription", "MedicationRequest.intent"),
    # a CodeableConcept with a wrong code in the value set's own system
    (_allergy("active"), ("clinicalStatus", "coding", 0, "code"), "current", "AllergyIntolerance.clinicalStatus"),
    # bindings the hand-made extract did not cover: other resource types, data types inside them
    ({"resourceType": "Task", "status": "requested", "intent": "order"}, ("intent",), "orderx", "Task.intent"),
    ({"resourceType": "RelatedPerson", "patient": P, "gender": "female"}, ("gender",), "mmale", "RelatedPerson.gender"),
    ({"resourceType": "Questionnaire", "status": "active", "item": [{"linkId": "1", "type": "string"}]},
     ("item", 0, "type"), "free-text", "Questionnaire.item[0].type"),
    (_adverse_event("severe"), ("severity", "coding", 0, "code"), "catastrophic", "AdverseEvent.severity"),
    (_medication_request(), ("dosageInstruction", 0, "timing", "repeat", "when", 0), "BEDTIME",
     "MedicationRequest.dosageInstruction[0].timing.repeat.when[0]"),
    ({"resourceType": "Flag", "status": "active", "subject": P, "code": {"text": "Violent patient"}},
     ("status",), "on", "Flag.status"),
    ({"resourceType": "Consent", "status": "active", "scope": {"text": "treatment"}, "category": [{"text": "x"}],
      "patient": P, "policyRule": {"text": "local policy"}}, ("status",), "granted", "Consent.status"),
]  # fmt: skip


def _set(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(("valid", "path", "wrong", "where"), CASES, ids=[c[3] for c in CASES])
def test_a_code_outside_a_required_binding_is_refused(store: Store, valid: dict[str, Any], path: tuple[Any, ...],
                                                      wrong: Any, where: str) -> None:  # fmt: skip
    before = store.stats()["versions"]
    with pytest.raises(UnprocessableResource) as err:
        store.create(_set(valid, path, wrong))
    found = [(i["expression"][0], i["code"]) for i in err.value.outcome["issue"]]
    assert found == [(where, "code-invalid")]
    assert "required value set" in err.value.outcome["issue"][0]["diagnostics"]
    assert store.stats()["versions"] == before
    stored = store.create(copy.deepcopy(valid))
    assert {k: v for k, v in stored.items() if k not in ("id", "meta")} == valid


def test_a_binding_the_package_cannot_expand_is_not_checked(store: Store) -> None:
    """Attachment.contentType (BCP-13 mime types) is listed in value_sets.json's notChecked."""
    doc = {"resourceType": "DocumentReference", "status": "current", "subject": P,
           "content": [{"attachment": {"contentType": "application/x-made-up", "url": "http://example.org/a"}}]}  # fmt: skip
    assert store.create(doc)["content"] == doc["content"]
