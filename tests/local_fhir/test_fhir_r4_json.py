"""Strict R4 JSON on every write (issue 17): JSON types of primitives, no empty or null values
(ele-1), non-empty strings, required bindings; every problem listed with a FHIRPath expression;
nothing written when refused; what is stored is what was validated."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from fhir_builders import observation, patient

from local_fhir import Store, UnprocessableResource
from local_fhir.jsontext import loads_exact
from local_fhir.validation import problems

REPO = Path(__file__).resolve().parents[2]


def _obs(**value: Any) -> dict[str, Any]:
    return observation("o1", "Patient/p1", "2339-0", "2024-01-01", **value)


def _refused(store: Store, resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(expression, code) of each problem; asserts that nothing was written."""
    before = store.stats()
    with pytest.raises(UnprocessableResource) as err:
        store.create(resource)
    assert err.value.status == 422
    assert store.stats()["versions"] == before["versions"]
    return [(i["expression"][0], i["code"]) for i in err.value.outcome["issue"]]


# -- the examples of the issue -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("valueBoolean", "true"),
        ("valueBoolean", 0),
        ("valueBoolean", 1),
        ("valueInteger", "42"),
        ("valueInteger", "+42"),
        ("valueInteger", True),
        ("valueInteger", 4.5),
    ],
)
def test_primitives_must_have_their_json_type(store: Store, element: str, value: Any) -> None:
    assert _refused(store, _obs(**{element: value})) == [(f"Observation.{element}", "value")]


def test_a_decimal_given_as_a_string_is_refused(store: Store) -> None:
    found = _refused(store, _obs(valueQuantity={"value": "9.2", "unit": "mmol/L"}))
    assert found == [("Observation.valueQuantity.value", "value")]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"name": []}, "Patient.name"),
        ({"name": [{}]}, "Patient.name[0]"),
        ({"maritalStatus": {}}, "Patient.maritalStatus"),
        ({"maritalStatus": None}, "Patient.maritalStatus"),
        ({"birthDate": None}, "Patient.birthDate"),
        ({"gender": "male", "_gender": None}, "Patient.gender"),
        ({"gender": "male", "_gender": {}}, "Patient.gender"),
        ({"name": [{"given": ["Ann", None]}]}, "Patient.name[0].given[1]"),
        ({"name": [{"given": ["Ann", None], "_given": [None, {"id": "g2"}]}]}, "Patient.name[0].given[1]"),
        ({"name": [{"id": "only-an-id"}]}, "Patient.name[0]"),
    ],
)
def test_empty_and_null_values_are_refused(store: Store, extra: dict[str, Any], where: str) -> None:
    resource = {"resourceType": "Patient", "id": "p1", **extra}
    assert [w for w, _ in _refused(store, resource)] == [where]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"implicitRules": ""}, "Patient.implicitRules"),  # uri
        ({"photo": [{"contentType": "image/png", "data": ""}]}, "Patient.photo[0].data"),  # base64Binary
        ({"text": {"status": "generated", "div": ""}}, "Patient.text.div"),  # xhtml
        ({"name": [{"family": ""}]}, "Patient.name[0].family"),  # string
        ({"meta": {"profile": [""]}}, "Patient.meta.profile[0]"),  # canonical
    ],
)
def test_empty_strings_are_refused(store: Store, extra: dict[str, Any], where: str) -> None:
    assert [w for w, _ in _refused(store, {"resourceType": "Patient", **extra})] == [where]


def test_empty_markdown_is_refused(store: Store) -> None:
    note = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "note": [{"text": ""}]}
    assert [w for w, _ in _refused(store, note)] == ["Condition.note[0].text"]


def test_a_code_outside_its_required_binding_is_refused(store: Store) -> None:
    assert _refused(store, patient("p1", "Khan", gender="mmale")) == [("Patient.gender", "code-invalid")]
    bad_status = _obs()
    bad_status["status"] = "done"
    assert _refused(store, bad_status) == [("Observation.status", "code-invalid")]
    assert store.create(patient("p1", "Khan", gender="female"))["gender"] == "female"


def test_required_bindings_on_codeable_concepts(store: Store) -> None:
    system = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "code": {"text": "Asthma"}}
    for status in ({"coding": [{"system": system, "code": "bogus"}]}, {"text": "active"},
                   {"coding": [{"system": "http://other.org", "code": "active"}]}):  # fmt: skip
        assert _refused(store, {**condition, "clinicalStatus": status}) == [("Condition.clinicalStatus", "code-invalid")]
    # A child code of the hierarchy is in the value set; another coding beside it may be anything.
    ok = {"coding": [{"system": "http://other.org", "code": "x"}, {"system": system, "code": "relapse"}]}
    assert store.create({**condition, "clinicalStatus": ok})["clinicalStatus"] == ok


def test_bindings_of_data_types_and_backbone_elements(store: Store) -> None:
    found = _refused(store, patient("p1", "Khan", telecom=[{"system": "pigeon", "value": "x"}],
                                    contact=[{"gender": "F", "name": {"family": "Khan"}}]))  # fmt: skip
    assert found == [("Patient.telecom[0].system", "code-invalid"), ("Patient.contact[0].gender", "code-invalid")]
    found = _refused(store, _obs(valueQuantity={"value": 5, "comparator": "~"}))  # a Quantity
    assert found == [("Observation.valueQuantity.comparator", "code-invalid")]


def test_a_null_in_a_primitive_array_is_allowed_where_its_extension_is() -> None:
    given = {"given": ["Ann", None], "_given": [None, {"extension": [{"url": "http://example.org/x", "valueCode": "masked"}]}]}
    assert problems({"resourceType": "Patient", "name": [given]}) == []
    # and only there: the arrays line up, and a null on both sides is refused
    misaligned = {"given": ["Ann"], "_given": [None, {"extension": [{"url": "http://example.org/x", "valueCode": "x"}]}]}
    assert [i["expression"][0] for i in problems({"resourceType": "Patient", "name": [misaligned]})] == [
        "Patient.name[0].given"
    ]
    both_null = {"given": ["Ann", None], "_given": [{"id": "a"}, None]}
    assert [i["expression"][0] for i in problems({"resourceType": "Patient", "name": [both_null]})] == [
        "Patient.name[0].given[1]"
    ]


def test_primitive_extensions_are_reported_at_the_primitive() -> None:
    bad = {"resourceType": "Patient", "name": [{"given": ["Ann"], "_given": [{"extension": [{"url": "", "valueString": "x"}]}]}]}
    assert [i["expression"][0] for i in problems(bad)] == ["Patient.name[0].given[0].extension[0].url"]
    no_value = {"resourceType": "Patient", "_birthDate": {"id": "b"}}
    assert [i["expression"][0] for i in problems(no_value)] == ["Patient.birthDate"]
    value_and_extension = {"resourceType": "Patient", "birthDate": "1950", "_birthDate": {"id": "b"}}
    assert problems(value_and_extension) == []


def test_every_problem_is_listed_once_with_its_path(store: Store) -> None:
    bad = {
        "resourceType": "Patient",
        "active": "yes",
        "gender": "mmale",
        "birthDate": "1950-13-45",
        "name": [{"family": "Khan", "given": ["Ann", ""]}, {}],
        "telecom": [],
        "colour": "blue",
        "multipleBirthInteger": "2",
    }
    found = _refused(store, bad)
    assert [w for w, _ in found] == [
        "Patient.active", "Patient.gender", "Patient.name[0].given[1]", "Patient.name[1]", "Patient.telecom",
        "Patient.colour", "Patient.multipleBirthInteger", "Patient.birthDate",
    ]  # fmt: skip


def test_nested_resources_and_extensions(store: Store) -> None:
    contained = {"resourceType": "Patient", "contained": [{"resourceType": "Observation", "status": "final",
                                                            "code": {"text": "x"}, "valueBoolean": "false"}]}  # fmt: skip
    assert _refused(store, contained) == [("Patient.contained[0].ofType(Observation).valueBoolean", "value")]
    ext = patient("p1", "Khan", extension=[{"url": "http://example.org/a"}])  # neither a value nor extensions
    assert _refused(store, ext) == [("Patient.extension[0]", "invariant")]
    deep = patient("p1", "Khan", extension=[{"url": "http://example.org/a", "valueInteger": "1"}])
    assert _refused(store, deep) == [("Patient.extension[0].valueInteger", "value")]
    assert _refused(store, patient("p1", "Khan", fhir_comments=["DSTU2"])) == [("Patient.fhir_comments", "structure")]


def test_transactions_and_imports_are_strict(store: Store, tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:a", "resource": patient("ok", "Good"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "active": "true"}, "request": {"method": "POST", "url": "Patient"}},
    ]}  # fmt: skip
    with pytest.raises(UnprocessableResource) as err:
        store.process_bundle(bundle)
    assert err.value.outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.ofType(Patient).active"]
    (tmp_path / "a.ndjson").write_text(json.dumps(patient("p1", "Good")) + "\n" + json.dumps(_obs(valueInteger="42")) + "\n")
    report = store.import_paths([tmp_path / "a.ndjson"])
    assert not report.ok
    assert report.files[0].outcome["issue"][0]["expression"] == ["a.ndjson:2.Observation.valueInteger"]
    assert store.stats()["resources"] == 0


def test_what_is_stored_is_what_was_validated(store: Store) -> None:
    text = ('{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"Weight"},'
            '"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":87.940,"unit":"kg"},'
            '"effectiveDateTime":"2024-05-01T10:00:00+00:00","note":[{"text":"x"}]}')  # fmt: skip
    sent = loads_exact(text)
    store.update(copy.deepcopy(sent))
    kept = loads_exact(store.read_text("Observation", "o1"))
    kept.pop("meta")
    assert kept == sent and '"value":87.940' in store.read_text("Observation", "o1")


def _dataset() -> list[dict[str, Any]]:
    out = [loads_exact(line) for line in gzip.open(REPO / "resources" / "fhir" / "population.ndjson.gz", "rb")]
    for path in sorted((REPO / "resources" / "fhir" / "demo").glob("*.json")):
        out += [e["resource"] for e in loads_exact(path.read_bytes())["entry"]]
    return out


def test_the_bundled_dataset_is_valid_r4() -> None:
    bad = [(r["resourceType"], r.get("id"), problems(r)) for r in _dataset()]
    assert [b for b in bad if b[2]] == []


def test_the_synthea_bundles_are_valid_r4(shared_dir: Path) -> None:
    for path in sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:10]:
        for entry in loads_exact(path.read_bytes())["entry"]:
            assert problems(entry["resource"]) == [], (path.name, entry["resource"]["resourceType"])


def test_the_demo_dataset_builder_output_is_valid() -> None:
    """scripts/dataset_demo.py builds the demo patients the app ships: they must stay storable."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from dataset_demo import build_demo
    finally:
        sys.path.remove(str(REPO / "scripts"))
    shared, per_patient, _ = build_demo()
    built = [*shared, *(r for resources in per_patient.values() for r in resources)]
    assert len(per_patient) >= 1 and len(built) > 20
    assert [(r["resourceType"], r.get("id"), p) for r in built if (p := problems(r))] == []


def test_every_element_type_of_every_model_is_known() -> None:
    """A fhir.resources upgrade that types an element in a new way must be noticed here: such an
    element would go unchecked by the R4 JSON rules."""
    from fhir.resources.R4B import fhirtypes, get_fhir_model_class

    from local_fhir import r4json

    unknown = []
    for name in dir(fhirtypes):
        if not name.endswith("Type") or name.startswith("FHIR"):
            continue
        try:
            model = get_fhir_model_class(name[: -len("Type")])
        except (ValueError, KeyError, AttributeError):
            continue
        unknown += [f"{model.__name__}.{key}" for key, f in r4json.spec(model).items() if f.kind == r4json.OTHER]
    assert unknown == []
