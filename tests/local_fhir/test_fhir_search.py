"""R4 search semantics: each parameter type, modifier and prefix, paging, include, chaining."""

from __future__ import annotations

import pytest
from fhir_builders import ids, observation, patient

from local_fhir import Store, UnsupportedSearch


@pytest.fixture
def people(store: Store) -> Store:
    store.create(patient("p1", "Thompson", "Margaret", birthDate="1952-03-14", gender="female",
                         identifier=[{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]))  # fmt: skip
    store.create(patient("p2", "Okafor", "Emeka", birthDate="1969-11-02", gender="male", active=True))
    store.create(patient("p3", "Müller", "José", birthDate="1980", gender="male"))
    store.create(patient("p4", "Thomas", "Ann", birthDate="1952-03"))
    return store


def _q(store: Store, rtype: str, params: object) -> list[str]:
    return sorted(ids(store.search(rtype, params)))  # type: ignore[arg-type]


# -- string ------------------------------------------------------------------------------------
def test_string_prefix_case_and_accent_insensitive(people: Store) -> None:
    assert _q(people, "Patient", {"name": "thom"}) == ["p1", "p4"]
    assert _q(people, "Patient", {"family": "MULLER"}) == ["p3"]
    assert _q(people, "Patient", {"given": "jose"}) == ["p3"]
    assert _q(people, "Patient", {"name": "hompson"}) == []  # prefix, not substring


def test_string_exact_and_contains(people: Store) -> None:
    assert _q(people, "Patient", {"family:exact": "Müller"}) == ["p3"]
    assert _q(people, "Patient", {"family:exact": "muller"}) == []
    assert _q(people, "Patient", {"family:contains": "HOMP"}) == ["p1"]
    assert _q(people, "Patient", {"name:contains": "ll"}) == ["p3"]


# -- token -------------------------------------------------------------------------------------
def test_token_forms(people: Store) -> None:
    nhs = "https://fhir.nhs.uk/Id/nhs-number"
    assert _q(people, "Patient", {"identifier": "9434765919"}) == ["p1"]
    assert _q(people, "Patient", {"identifier": f"{nhs}|9434765919"}) == ["p1"]
    assert _q(people, "Patient", {"identifier": f"{nhs}|"}) == ["p1"]
    assert _q(people, "Patient", {"identifier": "|9434765919"}) == []  # has a system
    assert _q(people, "Patient", {"gender": "male"}) == ["p2", "p3"]
    assert _q(people, "Patient", {"active": "true"}) == ["p2"]


def test_token_no_system_and_text_and_not(store: Store) -> None:
    store.create({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                  "code": {"coding": [{"code": "E11", "display": "Type 2 diabetes"}], "text": "Diabetes mellitus type 2"},
                  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}})  # fmt: skip
    store.create({"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p1"},
                  "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
                  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}})  # fmt: skip
    assert _q(store, "Condition", {"code": "|E11"}) == ["c1"]
    assert _q(store, "Condition", {"code": "http://snomed.info/sct|38341003"}) == ["c2"]
    assert _q(store, "Condition", {"code:text": "diabetes"}) == ["c1"]
    assert _q(store, "Condition", {"code:text": "HYPERTENS"}) == ["c2"]
    assert _q(store, "Condition", {"clinical-status:not": "resolved"}) == ["c1"]
    assert _q(store, "Condition", {"clinical-status": "active,resolved"}) == ["c1", "c2"]


# -- date --------------------------------------------------------------------------------------
@pytest.fixture
def dated(store: Store) -> Store:
    store.create(observation("day", "Patient/p1", "1", "2021-06-15"))
    store.create(observation("instant", "Patient/p1", "1", "2021-06-15T10:30:00Z"))
    store.create(observation("month", "Patient/p1", "1", "2021-06"))
    store.create(observation("year", "Patient/p1", "1", "2021"))
    store.create(observation("later", "Patient/p1", "1", "2022-01-10T08:00:00+01:00"))
    store.create(observation("period", "Patient/p1", "1", {"start": "2021-06-10", "end": "2021-06-20"}))
    store.create(observation("open", "Patient/p1", "1", {"start": "2023-01-01"}))
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("2021-06-15", ["day", "instant"]),  # eq: the resource's range lies inside the day
        ("eq2021-06", ["day", "instant", "month", "period"]),
        ("eq2021", ["day", "instant", "month", "period", "year"]),
        ("2021-06-15T10:30", ["instant"]),
        ("ne2021-06-15", ["later", "month", "open", "period", "year"]),
        ("gt2021-06-15", ["later", "month", "open", "period", "year"]),  # ends after the day
        ("lt2021-06-15", ["month", "period", "year"]),  # starts before the day
        ("ge2021-06-15", ["day", "instant", "later", "month", "open", "period", "year"]),
        ("le2021-06-15", ["day", "instant", "month", "period", "year"]),
        ("sa2021-06-15", ["later", "open"]),  # starts after the day ends
        ("eb2021-06-15", []),
        ("eb2021-07", ["day", "instant", "month", "period"]),
        ("sa2022", ["open"]),
        ("ge2023-06-01", ["open"]),  # an open-ended Period reaches every later date
    ],
)
def test_date_prefixes_and_precision(dated: Store, query: str, expected: list[str]) -> None:
    assert _q(dated, "Observation", {"date": query}) == expected


def test_date_timezone_and_ap(dated: Store) -> None:
    # 08:00+01:00 is 07:00Z
    assert _q(dated, "Observation", {"date": "2022-01-10T07:00:00Z"}) == ["later"]
    assert "later" in _q(dated, "Observation", {"date": "ap2022-01-10"})
    assert "day" not in _q(dated, "Observation", {"date": "ap2022-01-10"})


def test_date_and_or(dated: Store) -> None:
    # 2021 as a whole reaches past 2021-06-01 and starts before 2021-07-01, so it matches both
    assert _q(dated, "Observation", {"date": ["ge2021-06-01", "lt2021-07-01"]}) == [
        "day",
        "instant",
        "month",
        "period",
        "year",
    ]
    assert _q(dated, "Observation", {"date": "2021-06-15,2022-01-10"}) == ["day", "instant", "later"]


def test_birthdate_partial(people: Store) -> None:
    assert _q(people, "Patient", {"birthdate": "1952"}) == ["p1", "p4"]
    assert _q(people, "Patient", {"birthdate": "1952-03-14"}) == ["p1"]  # p4 (1952-03) is wider than the day
    assert _q(people, "Patient", {"birthdate": "lt1970"}) == ["p1", "p2", "p4"]


def test_bad_date_is_an_error(dated: Store) -> None:
    with pytest.raises(UnsupportedSearch, match="date"):
        dated.search("Observation", {"date": "yesterday"})
    with pytest.raises(UnsupportedSearch):
        dated.search("Observation", {"date": "2021-02-30"})


# -- reference and chaining ----------------------------------------------------------------------
def test_reference_forms(people: Store) -> None:
    people.create(observation("o1", "Patient/p1", "1"))
    people.create(observation("o2", "Patient/p2", "1"))
    people.create(observation("o3", "http://example.org/fhir/Patient/p1", "1"))
    assert _q(people, "Observation", {"patient": "p1"}) == ["o1", "o3"]
    assert _q(people, "Observation", {"subject": "Patient/p2"}) == ["o2"]
    assert _q(people, "Observation", {"subject:Patient": "p1"}) == ["o1", "o3"]
    assert _q(people, "Observation", {"patient": "p1,p2"}) == ["o1", "o2", "o3"]


def test_chained_reference(people: Store) -> None:
    people.create(observation("o1", "Patient/p1", "1"))
    people.create(observation("o2", "Patient/p2", "1"))
    assert _q(people, "Observation", {"subject:Patient.name": "okafor"}) == ["o2"]
    assert _q(people, "Observation", {"patient.birthdate": "lt1960"}) == ["o1"]
    assert _q(people, "Observation", {"subject:Patient.identifier": "9434765919"}) == ["o1"]
    with pytest.raises(UnsupportedSearch, match="deeper"):
        people.search("Observation", {"subject.organization.name": "x"})


def test_appointment_clinic_list(store: Store) -> None:
    """The dashboard's query: Appointment?date=...&actor=Practitioner/..."""
    for aid, start, who in [("a1", "2026-11-23T09:00:00Z", "dr1"), ("a2", "2026-11-23T14:00:00Z", "dr2"),
                            ("a3", "2026-11-24T09:00:00Z", "dr1")]:  # fmt: skip
        store.create({"resourceType": "Appointment", "id": aid, "status": "booked", "start": start,
                      "end": start.replace(":00:00Z", ":20:00Z"),
                      "participant": [{"actor": {"reference": f"Practitioner/{who}"}, "status": "accepted"},
                                      {"actor": {"reference": "Patient/p1"}, "status": "accepted"}]})  # fmt: skip
    assert _q(store, "Appointment", {"date": "2026-11-23", "actor": "Practitioner/dr1"}) == ["a1"]
    assert _q(store, "Appointment", {"practitioner": "dr1"}) == ["a1", "a3"]
    assert _q(store, "Appointment", {"patient": "p1", "_sort": "date"}) == ["a1", "a2", "a3"]


# -- quantity, number, uri, missing -----------------------------------------------------------
def test_quantity(store: Store) -> None:
    store.create(observation("a", "Patient/p1", "x", valueQuantity={"value": 5.4, "unit": "mmol/L",
                              "system": "http://unitsofmeasure.org", "code": "mmol/L"}))  # fmt: skip
    store.create(observation("b", "Patient/p1", "x", valueQuantity={"value": 100, "unit": "mg/dL"}))
    assert _q(store, "Observation", {"value-quantity": "5.4"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "5.4|http://unitsofmeasure.org|mmol/L"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "5.4||mg/dL"}) == []
    assert _q(store, "Observation", {"value-quantity": "gt50"}) == ["b"]
    assert _q(store, "Observation", {"value-quantity": "le5.4"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "ap95"}) == ["b"]
    assert _q(store, "Observation", {"value-quantity": "ne100"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "100||mg/dL"}) == ["b"]
    with pytest.raises(UnsupportedSearch, match="not a number"):
        store.search("Observation", {"value-quantity": "lots"})


def test_quantity_implied_precision(store: Store) -> None:
    store.create(observation("a", "Patient/p1", "x", valueQuantity={"value": 5.4}))
    assert _q(store, "Observation", {"value-quantity": "5"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "5.40"}) == ["a"]
    assert _q(store, "Observation", {"value-quantity": "5.41"}) == []


def test_number(store: Store) -> None:
    for rid, p in [("r1", 0.02), ("r2", 0.5)]:
        store.create({"resourceType": "RiskAssessment", "id": rid, "status": "final",
                      "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": p}]})  # fmt: skip
    assert _q(store, "RiskAssessment", {"probability": "gt0.1"}) == ["r2"]
    assert _q(store, "RiskAssessment", {"probability": "0.02"}) == ["r1"]
    assert _q(store, "RiskAssessment", {"probability": "lt1"}) == ["r1", "r2"]


def test_uri(store: Store) -> None:
    store.create(
        {
            "resourceType": "Patient",
            "id": "u1",
            "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        }
    )
    store.create({"resourceType": "Patient", "id": "u2"})
    assert _q(
        store, "Patient", {"_profile": "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"}
    ) == ["u1"]
    assert _q(store, "Patient", {"_profile:below": "https://fhir.hl7.org.uk/"}) == ["u1"]
    assert _q(store, "Patient", {"_profile": "https://fhir.hl7.org.uk/"}) == []


def test_missing(people: Store) -> None:
    assert _q(people, "Patient", {"identifier:missing": "true"}) == ["p2", "p3", "p4"]
    assert _q(people, "Patient", {"identifier:missing": "false"}) == ["p1"]
    with pytest.raises(UnsupportedSearch):
        people.search("Patient", {"identifier:missing": "maybe"})


# -- _id, _lastUpdated, _sort, paging, _summary --------------------------------------------------
def test_id_and_last_updated(people: Store) -> None:
    assert _q(people, "Patient", {"_id": "p1,p3"}) == ["p1", "p3"]
    assert _q(people, "Patient", {"_lastUpdated": "gt2000-01-01"}) == ["p1", "p2", "p3", "p4"]
    assert _q(people, "Patient", {"_lastUpdated": "lt2000-01-01"}) == []


def test_sort_several_keys(people: Store) -> None:
    order = ids(people.search("Patient", {"_sort": "birthdate,-family"}))
    assert order == ["p4", "p1", "p2", "p3"]  # 1952-03 starts before 1952-03-14
    assert ids(people.search("Patient", {"_sort": "-gender,family"}))[:2] == [
        "p3",
        "p2",
    ]  # male: Müller, Okafor
    assert ids(people.search("Patient", {"_sort": "-_id"})) == ["p4", "p3", "p2", "p1"]


def test_paging_with_links(store: Store) -> None:
    for i in range(7):
        store.create(observation(f"o{i}", "Patient/p1", "1", f"2024-01-0{i + 1}"))
    first = store.search("Observation", {"patient": "p1", "_sort": "-date", "_count": "3"})
    assert first["total"] == 7
    assert ids(first) == ["o6", "o5", "o4"]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    seen = ids(first)
    url = links["next"]
    while url:
        page = store.search("Observation", url.split("?", 1)[1])
        seen += ids(page)
        links = {link["relation"]: link["url"] for link in page["link"]}
        assert "previous" in links
        url = links.get("next")
    assert seen == [f"o{i}" for i in range(6, -1, -1)]


def test_summary_count_and_count_zero(store: Store) -> None:
    for i in range(3):
        store.create(observation(f"o{i}", "Patient/p1", "1"))
    bundle = store.search("Observation", {"_summary": "count"})
    assert bundle["total"] == 3 and "entry" not in bundle
    zero = store.search("Observation", {"_count": "0"})
    assert zero["entry"] == [] and zero["total"] == 3
    assert [link["relation"] for link in zero["link"]] == ["self"]
    assert "total" not in store.search("Observation", {"_total": "none"})


# -- _include / _revinclude ---------------------------------------------------------------------
def test_include_and_revinclude(people: Store) -> None:
    people.create({"resourceType": "Encounter", "id": "e1", "status": "finished",
                   "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}})  # fmt: skip
    people.create(observation("o1", "Patient/p1", "1", encounter={"reference": "Encounter/e1"}))
    people.create(observation("o2", "Patient/p2", "1"))
    bundle = people.search("Observation", {"_id": "o1", "_include": "Observation:subject"})
    assert ids(bundle) == ["o1"]
    assert ids(bundle, "include") == ["p1"]
    bundle = people.search("Observation", {"_include": ["Observation:subject", "Observation:encounter"]})
    assert sorted(ids(bundle, "include")) == ["e1", "p1", "p2"]
    bundle = people.search("Patient", {"_id": "p1", "_revinclude": "Observation:subject"})
    assert ids(bundle) == ["p1"] and ids(bundle, "include") == ["o1"]
    bundle = people.search("Encounter", {"_revinclude": "Observation:encounter"})
    assert ids(bundle, "include") == ["o1"]
    bundle = people.search("Observation", {"_id": "o1", "_include": "Observation:subject:Practitioner"})
    assert ids(bundle, "include") == []


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"colour": "red"}, "colour"),
        ({"code:sounds-like": "x"}, "sounds-like"),
        ({"code:in": "http://x"}, ":in"),
        ({"_has:Observation:patient:code": "1"}, "_has"),
        ({"code-value-quantity": "x$5"}, "code-value-quantity"),
        ({"_sort": "colour"}, "colour"),
        ({"_count": "many"}, "_count"),
        ({"_summary": "text"}, "_summary"),
        ({"_include": "Observation:code"}, "not a reference"),
        ({"subject:Patient.shoe-size": "9"}, "shoe-size"),
    ],
)
def test_unknown_or_unsupported_parameters_are_named(
    store: Store, params: dict[str, str], named: str
) -> None:
    with pytest.raises(UnsupportedSearch) as err:
        store.search("Observation", params)
    assert named in str(err.value)
    assert err.value.outcome["issue"][0]["code"] == "not-supported"


def test_unindexed_type_rejects_other_parameters(store: Store) -> None:
    with pytest.raises(UnsupportedSearch, match="_id and _lastUpdated only"):
        store.search("Basic", {"code": "x"})
    with pytest.raises(UnsupportedSearch, match="not an R4 resource type"):
        store.search("Spaceship", {})


def test_raw_query_string(people: Store) -> None:
    assert sorted(ids(people.search("Patient", "name=thom&birthdate=1952-03-14"))) == ["p1"]
    assert sorted(ids(people.search("Patient", "gender=male&gender=female"))) == []  # repeated = AND


def test_patient_queries_are_driven_by_the_reference_index(store: Store) -> None:
    """The plan starts from idx_reference (not a scan of every Observation), whatever else is asked."""
    plan = store.builder.plan("Observation", {"patient": "p1", "category": "laboratory", "_sort": "-date"})
    from_sql, where, args = store._query_parts(plan)
    assert from_sql.startswith("(SELECT DISTINCT x.rid FROM idx_reference x")
    rows = (
        store._conn()
        .execute(f"EXPLAIN QUERY PLAN SELECT r.rid FROM {from_sql} WHERE {where}", args)
        .fetchall()
    )
    details = " | ".join(str(r[-1]) for r in rows)
    assert "idx_reference" in details
    assert "SCAN r" not in details and "SCAN resources" not in details
