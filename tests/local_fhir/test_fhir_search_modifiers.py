"""R4 search modifiers added for issue 17: token `:of-type`, reference `:identifier`, uri `:above`
and `:below`, token `:in`/`:not-in` (value sets shipped with the store; any other is refused by
name), and the refusals naming parameter and modifier."""

from __future__ import annotations

import pytest
from fhir_builders import ids

from local_fhir import Store, UnsupportedSearch

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN = "https://hospital.example.org/mrn"


def _q(store: Store, rtype: str, params: object) -> list[str]:
    return sorted(ids(store.search(rtype, params)))  # type: ignore[arg-type]


@pytest.fixture
def data(store: Store) -> Store:
    def ident(code: str, value: str, system: str = MRN) -> dict[str, object]:
        return {"type": {"coding": [{"system": V2, "code": code}]}, "system": system, "value": value}

    store.update({"resourceType": "Patient", "id": "p1", "identifier": [ident("MR", "123"),
                  {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]})  # fmt: skip
    store.update({"resourceType": "Patient", "id": "p2", "identifier": [ident("SS", "123")]})
    store.update({"resourceType": "Patient", "id": "p3", "identifier": [ident("MR", "456")]})
    obs = {"resourceType": "Observation", "code": {"text": "x"}}
    store.update({**obs, "id": "o1", "status": "final", "subject": {"identifier": {"system": MRN, "value": "123"}}})
    store.update({**obs, "id": "o2", "status": "amended",
                  "subject": {"reference": "Patient/p3", "type": "Patient", "identifier": {"system": MRN, "value": "456"}}})  # fmt: skip
    store.update({**obs, "id": "o3", "status": "cancelled", "subject": {"type": "Group", "identifier": {"system": MRN, "value": "456"}}})
    store.update({**obs, "id": "o4", "status": "final", "subject": {"reference": "Patient/p1"}})
    for cid, profile in (("c1", "http://example.org/fhir/StructureDefinition/letter"),
                         ("c2", "http://example.org/fhir/StructureDefinition/letter/v2"),
                         ("c3", "http://other.org/fhir/StructureDefinition/letter")):  # fmt: skip
        store.update({"resourceType": "Composition", "id": cid, "meta": {"profile": [profile]}, "status": "final",
                      "type": {"text": "Letter"}, "date": "2024-01-01", "author": [{"display": "Dr A"}], "title": "Letter"})  # fmt: skip
    return store


def test_token_of_type(data: Store) -> None:
    assert _q(data, "Patient", {"identifier:of-type": f"{V2}|MR|123"}) == ["p1"]
    assert _q(data, "Patient", {"identifier:of-type": f"{V2}|SS|123"}) == ["p2"]
    assert _q(data, "Patient", {"identifier:of-type": f"{V2}|MR|123,{V2}|MR|456"}) == ["p1", "p3"]
    assert _q(data, "Patient", {"identifier:of-type": "|MR|456"}) == ["p3"]  # any system for the type
    assert _q(data, "Patient", {"identifier:of-type": "http://other|MR|123"}) == []
    assert _q(data, "Patient", {"identifier": "123"}) == ["p1", "p2"]  # the plain token is unchanged
    with pytest.raises(UnsupportedSearch, match="identifier:of-type"):
        data.search("Patient", {"identifier:of-type": "MR|123"})


def test_reference_identifier(data: Store) -> None:
    assert _q(data, "Observation", {"subject:identifier": f"{MRN}|123"}) == ["o1"]
    assert _q(data, "Observation", {"subject:identifier": f"{MRN}|456"}) == ["o2", "o3"]
    assert _q(data, "Observation", {"subject:identifier": "456"}) == ["o2", "o3"]  # any system
    assert _q(data, "Observation", {"subject:identifier": "|456"}) == []  # no system
    # `patient` reads `subject` rows that point at a Patient: a Reference typed Group is not one
    assert _q(data, "Observation", {"patient:identifier": f"{MRN}|456"}) == ["o2"]
    # R4: the identifier in the reference, not the target's own identifiers
    assert _q(data, "Observation", {"subject:identifier": "9434765919"}) == []


def test_uri_above_and_below(data: Store) -> None:
    assert _q(data, "Composition", {"_profile:below": "http://example.org/fhir/"}) == ["c1", "c2"]
    assert _q(data, "Composition", {"_profile:above": "http://example.org/fhir/StructureDefinition/letter/v2/x"}) == ["c1", "c2"]
    assert _q(data, "Composition", {"_profile": "http://example.org/fhir/StructureDefinition/letter"}) == ["c1"]


def test_in_and_not_in_with_a_shipped_value_set(data: Store) -> None:
    vs = "http://hl7.org/fhir/ValueSet/observation-status"
    assert _q(data, "Observation", {"status:in": vs}) == ["o1", "o2", "o3", "o4"]
    assert _q(data, "Observation", {"status:not-in": vs}) == []
    assert _q(data, "Patient", {"gender:in": "http://hl7.org/fhir/ValueSet/administrative-gender"}) == []


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("code:in", "http://example.org/fhir/ValueSet/diabetes", ["code:in", ":in", "http://example.org/fhir/ValueSet/diabetes"]),
        ("code:not-in", "http://snomed.info/sct?fhir_vs=isa/73211009", ["code:not-in", ":not-in"]),
        ("code:above", "http://snomed.info/sct|73211009", ["code:above", ":above"]),
        ("code:below", "http://snomed.info/sct|73211009", ["code:below", ":below"]),
        ("date:in", "http://hl7.org/fhir/ValueSet/observation-status", ["date:in", ":in"]),
        ("subject:of-type", "a|b|c", ["subject:of-type", ":of-type"]),
    ],
)
def test_refusals_name_the_parameter_and_the_modifier(data: Store, name: str, value: str, named: list[str]) -> None:
    with pytest.raises(UnsupportedSearch) as err:
        data.search("Observation", {name: value})
    message = str(err.value)
    assert all(part in message for part in named), message
    assert err.value.outcome["issue"][0]["code"] == "not-supported"


def test_an_old_store_is_reindexed_for_the_new_rows(tmp_path: object) -> None:
    """Stores indexed before the modifier rows existed get them on open (INDEX_FORMAT)."""
    from pathlib import Path

    db = Path(str(tmp_path)) / "old.sqlite3"
    with Store(db) as store:
        store.update({"resourceType": "Patient", "id": "p1",
                      "identifier": [{"type": {"coding": [{"system": V2, "code": "MR"}]}, "value": "1"}]})  # fmt: skip
        conn = store._conn()
        conn.execute("DELETE FROM idx_token WHERE param LIKE '%:of-type'")
        conn.execute("UPDATE store_info SET value = 'stale' WHERE key = 'definitions'")
    with Store(db) as store:
        assert _q(store, "Patient", {"identifier:of-type": f"{V2}|MR|1"}) == ["p1"]
