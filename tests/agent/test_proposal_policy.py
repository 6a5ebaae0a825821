"""The chart assistant's proposal policy (Qt-free): the whitelist per writable type, the complete
readable display, and the digest that makes the approved resource exactly the written one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from scripted_engine import ScriptedEngine

from clarke_desktop.agent import proposal_policy as policy
from clarke_desktop.agent.assistant import (
    WRITE_TYPES,
    ChartAssistant,
    ProposalError,
    apply_proposal,
    reject_proposal,
    validate_r4,
)
from clarke_desktop.agent.proposal_policy import (
    WHITELIST,
    Element,
    canonical_json,
    describe,
    refusals,
    resource_digest,
    without_server_fields,
)
from clarke_desktop.schemas import ModelInfo

SCT, LOINC, UCUM = "http://snomed.info/sct", "http://loinc.org", "http://unitsofmeasure.org"
PATIENT = {"reference": "Patient/pt-001"}


def concept(text: str, code: str = "1234", system: str = SCT) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": text}], "text": text}


def qty(value: float, unit: str = "mg") -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


TIMING = {
    "event": ["2027-01-02T08:00:00Z"],
    "repeat": {"boundsPeriod": {"start": "2027-01-02", "end": "2027-02-02"}, "count": 10, "countMax": 12,
               "duration": 5, "durationMax": 10, "durationUnit": "min", "frequency": 1, "frequencyMax": 2,
               "period": 1, "periodMax": 2, "periodUnit": "d", "dayOfWeek": ["mon", "thu"],
               "timeOfDay": ["08:00:00"], "when": ["MORN"], "offset": 30},
    "code": concept("Once daily", "QD", "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"),
}  # fmt: skip
MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest", "status": "active", "statusReason": concept("Started"),
    "intent": "order", "category": [concept("Outpatient", "outpatient")], "priority": "routine",
    "medicationCodeableConcept": concept("Amlodipine 5mg tablets", "319283006"), "subject": PATIENT,
    "authoredOn": "2027-01-02", "reasonCode": [concept("Hypertension", "38341003")],
    "courseOfTherapyType": concept("Continuous", "continuous"), "note": [{"text": "Check BP in 2 weeks"}],
    "dosageInstruction": [
        {"sequence": 1, "text": "One tablet once daily", "additionalInstruction": [concept("With food")],
         "patientInstruction": "Take in the morning", "timing": TIMING, "asNeededBoolean": False,
         "site": concept("Mouth"), "route": concept("Oral", "26643006"), "method": concept("Swallow"),
         "doseAndRate": [
             {"type": concept("Ordered", "ordered"), "doseQuantity": qty(5), "rateRatio": {
                 "numerator": qty(5), "denominator": qty(1, "d")}},
             {"doseRange": {"low": qty(5), "high": qty(10)}, "rateRange": {"low": qty(1), "high": qty(2)}},
             {"doseQuantity": qty(7.5), "rateQuantity": qty(2, "mg/h")},
         ],
         "maxDosePerPeriod": {"numerator": qty(10), "denominator": qty(1, "d")},
         "maxDosePerAdministration": qty(10), "maxDosePerLifetime": qty(1000)},
        {"text": "Then two tablets", "asNeededCodeableConcept": concept("Headache"),
         "timing": {"repeat": {"boundsDuration": {"value": 7, "unit": "d", "system": UCUM, "code": "d"}}},
         "doseAndRate": [{"doseQuantity": qty(10)}]},
    ],
    "dispenseRequest": {"validityPeriod": {"start": "2027-01-02", "end": "2027-07-02"}, "numberOfRepeatsAllowed": 3,
                        "quantity": qty(28, "tablet"), "expectedSupplyDuration": qty(28, "d")},
}  # fmt: skip
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation", "status": "final", "category": [concept("Vital signs", "vital-signs")],
    "code": concept("Systolic blood pressure", "8480-6", LOINC), "subject": PATIENT,
    "effectiveDateTime": "2027-01-02T09:30:00Z",
    "valueQuantity": {"value": 150, "comparator": ">", "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
    "interpretation": [concept("High", "H")], "note": [{"text": "Seated, left arm"}],
    "bodySite": concept("Left arm"), "method": concept("Automated"),
    "referenceRange": [{"low": qty(90, "mmHg"), "high": qty(140, "mmHg"), "type": concept("Normal"),
                        "text": "90 to 140"}],
    "component": [
        {"code": concept("Q", "1"), "valueQuantity": {**qty(1), "comparator": "<"}},
        {"code": concept("C", "2"), "valueCodeableConcept": concept("Present")},
        {"code": concept("S", "3"), "valueString": "irregular"},
        {"code": concept("B", "4"), "valueBoolean": True},
        {"code": concept("I", "5"), "valueInteger": 3},
        {"code": concept("R", "6"), "valueRange": {"low": qty(1), "high": qty(2)}},
        {"code": concept("Ra", "7"), "valueRatio": {"numerator": qty(1), "denominator": qty(2)}},
        {"code": concept("D", "8"), "valueDateTime": "2027-01-02"},
        {"code": concept("X", "9"), "dataAbsentReason": concept("Not asked"),
         "interpretation": [concept("Normal", "N")]},
    ],
}  # fmt: skip
_OBS_VALUES: list[dict[str, Any]] = [
    {"effectivePeriod": {"start": "2027-01-01", "end": "2027-01-02"}, "valueCodeableConcept": concept("Positive")},
    {"valueString": "trace"}, {"valueBoolean": False}, {"valueInteger": 4},
    {"valueRange": {"low": qty(1), "high": qty(3)}}, {"valueRatio": {"numerator": qty(1), "denominator": qty(4)}},
    {"valueDateTime": "2027-01-03"}, {"dataAbsentReason": concept("Not performed")},
]  # fmt: skip
ALLERGY: dict[str, Any] = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": concept("Active", "active", "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"),
    "verificationStatus": concept("Confirmed", "confirmed",
                                  "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"),
    "type": "allergy", "category": ["medication"], "criticality": "high", "code": concept("Penicillin"),
    "patient": PATIENT, "onsetDateTime": "2020-05-01", "recordedDate": "2027-01-02",
    "lastOccurrence": "2026-12-01", "note": [{"text": "Told by the patient"}],
    "reaction": [{"substance": concept("Amoxicillin"), "manifestation": [concept("Urticaria")],
                  "description": "Hives over the trunk", "onset": "2026-12-01", "severity": "moderate",
                  "exposureRoute": concept("Oral"), "note": [{"text": "Resolved with antihistamine"}]}],
}  # fmt: skip
SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest", "status": "active", "intent": "order",
    "category": [concept("Laboratory procedure")], "priority": "routine", "code": concept("HbA1c", "4548-4", LOINC),
    "orderDetail": [concept("Fasting")], "subject": PATIENT, "occurrenceDateTime": "2027-02-22",
    "asNeededBoolean": False, "authoredOn": "2027-01-02", "performerType": concept("Phlebotomist"),
    "reasonCode": [concept("Diabetes")], "bodySite": [concept("Arm")], "note": [{"text": "Fasting sample"}],
    "patientInstruction": "Nothing to eat after midnight",
}  # fmt: skip


def examples() -> list[dict[str, Any]]:
    """Valid resources that between them use every element the whitelist accepts."""
    out = [MEDICATION_REQUEST, OBSERVATION, ALLERGY, SERVICE_REQUEST]
    base_obs = {k: v for k, v in OBSERVATION.items() if k not in {"effectiveDateTime", "valueQuantity"}}
    out += [{**base_obs, **extra} for extra in _OBS_VALUES]
    out.append({**{k: v for k, v in ALLERGY.items() if k != "onsetDateTime"}, "onsetString": "Childhood"})
    base_sr = {k: v for k, v in SERVICE_REQUEST.items() if k not in {"occurrenceDateTime", "asNeededBoolean"}}
    out.append({**base_sr, "occurrencePeriod": {"start": "2027-02-01", "end": "2027-03-01"},
                "asNeededCodeableConcept": concept("Symptoms")})  # fmt: skip
    out.append({**base_sr, "occurrenceTiming": TIMING})
    bounded = {"repeat": {"boundsDuration": qty(7, "d"), "frequency": 1, "period": 1, "periodUnit": "wk"}}
    out.append({**base_sr, "occurrenceTiming": bounded})
    return out


def _spec_paths(spec: Any, prefix: str) -> set[str]:
    paths: set[str] = set()
    for key, element in spec.items():
        assert isinstance(element, Element)
        path = f"{prefix}.{key}"
        paths.add(path)
        if element.children is not None:
            paths |= _spec_paths(element.children, path)
    return paths


def _used_paths(value: Any, prefix: str) -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            paths.add(f"{prefix}.{key}")
            paths |= _used_paths(child, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            paths |= _used_paths(item, prefix)
    return paths


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]


def _shown(value: Any, text: str) -> bool:
    if isinstance(value, bool):
        return ("yes" if value else "no") in text
    if isinstance(value, int | float):
        return json.dumps(value) in text
    return str(value) in text or policy._system(value) in text


# --- the whitelist ------------------------------------------------------------------------------


def test_the_whitelist_covers_exactly_the_writable_types() -> None:
    assert set(WHITELIST) == set(WRITE_TYPES)


@pytest.mark.parametrize("resource", examples(), ids=lambda r: r["resourceType"])
def test_every_whitelisted_example_is_accepted_and_valid_r4(resource: dict[str, Any]) -> None:
    assert refusals(resource) == []
    validate_r4(resource)  # R4 refuses unknown keys: every whitelisted name is a real element


def test_every_whitelisted_element_is_a_real_r4_element() -> None:
    used: set[str] = set()
    for resource in examples():
        used |= _used_paths(resource, resource["resourceType"])
    for rtype, spec in WHITELIST.items():
        missing = _spec_paths(spec, rtype) - used
        assert not missing, f"whitelisted but never shown valid in an example: {sorted(missing)}"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda r: r.update(extension=[{"url": "http://x.org/e", "valueString": "take ten"}]),
         "MedicationRequest.extension[0]", "extensions are not accepted"),
        (lambda r: r.update(modifierExtension=[{"url": "http://x.org/m", "valueBoolean": True}]),
         "MedicationRequest.modifierExtension[0]", "modifier extensions"),
        (lambda r: r.update(text={"status": "generated", "div": "<div>Aspirin</div>"}),
         "MedicationRequest.text", "narrative"),
        (lambda r: r.update(contained=[{"resourceType": "Medication", "id": "m"}]),
         "MedicationRequest.contained[0]", "contained"),
        (lambda r: r.update(meta={"security": [{"code": "R"}]}), "MedicationRequest.meta", "meta"),
        (lambda r: r.update(id="abc"), "MedicationRequest.id", "assigns the id"),
        (lambda r: r.update(identifier=[{"value": "RX-1"}]), "MedicationRequest.identifier[0]", "identifiers"),
        (lambda r: r.update(requester={"reference": "Practitioner/gp-rajesh-patel"}),
         "MedicationRequest.requester", "references to other resources"),
        (lambda r: r.update(doNotPerform=True), "MedicationRequest.doNotPerform", "reverses the meaning"),
        (lambda r: r.update(medicationReference={"reference": "Medication/m1"}),
         "MedicationRequest.medicationReference", "medicationCodeableConcept"),
        (lambda r: r.update(bogus=1), "MedicationRequest.bogus", "not an element"),
        (lambda r: r["dosageInstruction"][1].update(extension=[{"url": "http://x.org/e"}]),
         "MedicationRequest.dosageInstruction[1].extension[0]", "extensions"),
        (lambda r: r["medicationCodeableConcept"]["coding"][0].update(userSelected=True),
         "MedicationRequest.medicationCodeableConcept.coding[0].userSelected", "not an element"),
        (lambda r: r["note"][0].update(authorString="Dr Who"), "MedicationRequest.note[0].authorString",
         "not an element"),
        (lambda r: r.update(status="entered-in-error"), "MedicationRequest.status", "entered-in-error"),
        (lambda r: r["note"][0].update(text="Take 5 mg\u202eg m 05"), "MedicationRequest.note[0].text",
         "U+202E"),
        (lambda r: r["note"][0].update(text="ok\u200b"), "MedicationRequest.note[0].text", "U+200B"),
        (lambda r: r["note"][0].update(text="x" * 2001), "MedicationRequest.note[0].text", "longer than"),
        (lambda r: r["note"][0].update(text="  "), "MedicationRequest.note[0].text", "is empty"),
        (lambda r: r.update(note=[]), "MedicationRequest.note", "at least one"),
        (lambda r: r.update(status=["active"]), "MedicationRequest.status", "single value"),
        (lambda r: r.update(medicationCodeableConcept="Aspirin"), "MedicationRequest.medicationCodeableConcept",
         "element with content"),
    ],
)  # fmt: skip
def test_anything_outside_the_whitelist_is_refused_by_path(change: Any, path: str, words: str) -> None:
    resource = copy.deepcopy(MEDICATION_REQUEST)
    change(resource)
    found = refusals(resource)
    assert [r.path for r in found] == [path], found
    assert words in found[0].reason and str(found[0]).startswith(f"{path}: ")


def test_too_many_elements_to_check_are_refused() -> None:
    resource = copy.deepcopy(SERVICE_REQUEST)
    resource["note"] = [{"text": f"note {i}"} for i in range(policy.MAX_LINES)]
    [found] = refusals(resource)
    assert found.path == "ServiceRequest" and "at most" in found.reason


def test_allergy_verification_entered_in_error_is_refused() -> None:
    resource = copy.deepcopy(ALLERGY)
    resource["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
    assert [r.path for r in refusals(resource)] == ["AllergyIntolerance.verificationStatus.coding[0].code"]


# --- the display --------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", examples(), ids=lambda r: r["resourceType"])
def test_every_value_written_is_on_a_line(resource: dict[str, Any]) -> None:
    lines = describe(resource)
    text = "\n".join(lines)
    for leaf in _leaves(resource):
        assert _shown(leaf, text), f"{leaf!r} is not shown"
    assert len(lines) == len(set(lines)) or resource["resourceType"] == "Observation"  # no line hides another


def test_the_display_reads_as_the_clinician_would_say_it() -> None:
    lines = describe(MEDICATION_REQUEST)
    assert lines[:3] == [
        "Resource: MedicationRequest",
        "Status: active",
        "Status reason coding: 1234 “Started” (SNOMED CT)",
    ]
    assert "Medication: Amlodipine 5mg tablets" in lines
    assert "Medication coding: 319283006 “Amlodipine 5mg tablets” (SNOMED CT)" in lines
    assert "Patient: Patient/pt-001" in lines
    assert "Dosage 1: One tablet once daily" in lines and "Dosage 2: Then two tablets" in lines
    assert "Dosage 1 › Dose and rate 1 › Dose: 5 mg (UCUM mg)" in lines
    assert "Dosage 2 › Dose: 10 mg (UCUM mg)" in lines  # one dose and rate: no extra level
    assert "Dosage 1 › Timing › Frequency: 1" in lines and "Dosage 1 › Timing › Period unit: d" in lines
    assert "Dosage 1 › As needed: no" in lines
    assert "Note: Check BP in 2 weeks" in lines
    assert "Dispense request › Number of repeats allowed: 3" in lines
    assert "Value: >150 mmHg (UCUM mm[Hg])" in describe(OBSERVATION)
    assert "Effective period: from 2027-01-01 to 2027-01-02" not in describe(OBSERVATION)
    hidden = describe({"resourceType": "MedicationRequest", "extension": [{"url": "http://x.org/e",
                                                                           "valueString": "take ten"}],
                       "text": {"status": "generated", "div": "<div>Aspirin</div>"}})  # fmt: skip
    assert hidden[1:] == ["Extension › Url: http://x.org/e", "Extension › Value: take ten",
                          "Narrative › Status: generated", "Narrative › Narrative text: <div>Aspirin</div>"]  # fmt: skip


def test_the_display_never_fails_on_odd_input() -> None:
    deep: dict[str, Any] = {"resourceType": "Observation"}
    node = deep
    for _ in range(60):
        node["extension"] = [{"url": "u"}]
        node = node["extension"][0]
    lines = describe(deep)
    assert any("nested too deeply" in line for line in lines)
    assert describe({"resourceType": "Observation", "note": [], "code": {}, "x": None}) == [
        "Resource: Observation", "Note: (empty list)", "Code: (empty)", "X: (none)",
    ]  # fmt: skip


# --- the seal -----------------------------------------------------------------------------------


def test_the_digest_is_of_the_canonical_json() -> None:
    reordered = dict(reversed(list(SERVICE_REQUEST.items())))
    assert canonical_json(reordered) == canonical_json(SERVICE_REQUEST)
    assert resource_digest(reordered) == resource_digest(SERVICE_REQUEST)
    changed = copy.deepcopy(SERVICE_REQUEST)
    changed["note"][0]["text"] += "."
    assert resource_digest(changed) != resource_digest(SERVICE_REQUEST)
    assert resource_digest({"v": 5}) != resource_digest({"v": 5.0})  # what is written, to the byte
    with pytest.raises(ValueError):
        canonical_json({"v": float("nan")})


def _assistant(fhir: Any) -> ChartAssistant:
    engine = ScriptedEngine([])
    engine.info = ModelInfo(name="MedGemma", role="ehr_agent", file="agent.gguf", sha256="ab" * 32)
    return ChartAssistant(fhir, engine, "pt-001")


def test_a_proposal_is_shown_and_sealed_whole(writable_fhir) -> None:
    proposal = _assistant(writable_fhir).make_proposal("MedicationRequest", copy.deepcopy(MEDICATION_REQUEST))
    assert proposal.status == "pending" and proposal.refusals == []
    assert proposal.lines == describe(proposal.resource) and proposal.digest == resource_digest(
        proposal.resource
    )
    assert proposal.model and proposal.model.sha256 == "ab" * 32
    assert proposal.prompt_version and proposal.prompt_version.startswith("prompts-v")


def test_the_proposal_owns_its_resource(writable_fhir) -> None:
    given = copy.deepcopy(SERVICE_REQUEST)
    proposal = _assistant(writable_fhir).make_proposal("ServiceRequest", given)
    given["note"][0]["text"] = "changed by whoever held the model's dict"
    assert proposal.resource["note"][0]["text"] == "Fasting sample"


def test_the_written_resource_is_the_approved_one(writable_fhir) -> None:
    for resource in (MEDICATION_REQUEST, OBSERVATION, ALLERGY, SERVICE_REQUEST):
        proposal = _assistant(writable_fhir).make_proposal(resource["resourceType"], copy.deepcopy(resource))
        applied = apply_proposal(
            writable_fhir, proposal, approved_by="Dr Sarah Chen", approved_digest=proposal.digest
        )
        assert applied.created is not None
        stored = writable_fhir.read(applied.created.resource_type, applied.created.id)
        assert canonical_json(without_server_fields(stored)) == canonical_json(proposal.resource)
        assert applied.written_digest == proposal.digest
        assert [t["code"] for t in stored["meta"]["tag"]] == ["assistant-proposal"]


def test_a_resource_changed_after_it_was_shown_is_not_written(writable_fhir) -> None:
    proposal = _assistant(writable_fhir).make_proposal("MedicationRequest", copy.deepcopy(MEDICATION_REQUEST))
    shown = proposal.digest
    before = len(writable_fhir.search_all("MedicationRequest", {"patient": "pt-001"}))
    proposal.resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 50
    with pytest.raises(ProposalError, match="changed after it was shown"):
        apply_proposal(writable_fhir, proposal, approved_by="Dr Sarah Chen", approved_digest=shown)
    # A substitute sealed with its own digest is still not the one approved.
    resealed = proposal.model_copy(update={"digest": resource_digest(proposal.resource)})
    with pytest.raises(ProposalError, match="changed after it was shown"):
        apply_proposal(writable_fhir, resealed, approved_by="Dr Sarah Chen", approved_digest=shown)
    with pytest.raises(ProposalError, match="changed after it was shown"):
        apply_proposal(writable_fhir, resealed, approved_by="Dr Sarah Chen", approved_digest="")
    assert len(writable_fhir.search_all("MedicationRequest", {"patient": "pt-001"})) == before


def test_a_refused_proposal_is_shown_but_never_approvable(writable_fhir) -> None:
    resource = {
        **copy.deepcopy(SERVICE_REQUEST),
        "extension": [{"url": "http://x.org/e", "valueCode": "stat"}],
    }
    proposal = _assistant(writable_fhir).make_proposal("ServiceRequest", resource)
    assert proposal.status == "refused" and [r.path for r in proposal.refusals] == [
        "ServiceRequest.extension[0]"
    ]
    assert "Extension › Value code: stat" in proposal.lines  # shown, with why it is refused
    with pytest.raises(ProposalError, match="refused and cannot be approved"):
        apply_proposal(writable_fhir, proposal, approved_by="Dr Sarah Chen", approved_digest=proposal.digest)
    with pytest.raises(ProposalError, match="already refused"):
        reject_proposal(proposal, rejected_by="Dr Sarah Chen")
    # Forcing its status does not get it past the whitelist at write time.
    forced = proposal.model_copy(update={"status": "pending"})
    with pytest.raises(ProposalError, match="may not be written"):
        apply_proposal(writable_fhir, forced, approved_by="Dr Sarah Chen", approved_digest=proposal.digest)


def test_a_resource_of_another_type_than_proposed_is_not_a_proposal(writable_fhir) -> None:
    with pytest.raises(ProposalError, match="not the Observation proposed"):
        _assistant(writable_fhir).make_proposal("Observation", copy.deepcopy(SERVICE_REQUEST))
