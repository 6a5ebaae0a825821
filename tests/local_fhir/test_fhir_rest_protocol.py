"""The REST facade (in process, starlette's TestClient): `$validate` at every level, the statuses R4
gives each error (always an OperationOutcome), server-assigned ids, unknown operations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fhir_builders import observation, patient
from starlette.testclient import TestClient

from local_fhir import Store
from local_fhir.server import make_app

FHIR = {"Content-Type": "application/fhir+json"}
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    store.create(patient("p1", "Thompson", gender="female"))
    app = make_app(store, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1:8080", headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def _issues(response: Any) -> list[tuple[str, str, list[str]]]:
    body = response.json()
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert body["resourceType"] == "OperationOutcome", body
    return [(i["severity"], i["code"], i.get("expression", [])) for i in body["issue"]]


# -- $validate ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/$validate", "/Patient/$validate", "/Patient/p1/$validate"])
def test_validate_a_valid_resource_gives_one_information_issue(api: TestClient, url: str) -> None:
    response = api.post(url, json=patient("p1", "Thompson"))
    assert response.status_code == 200
    assert _issues(response) == [("information", "informational", [])]


@pytest.mark.parametrize("url", ["/$validate", "/Patient/$validate", "/Patient/p1/$validate"])
def test_validate_lists_every_error(api: TestClient, url: str, store: Store) -> None:
    before = store.stats()["versions"]
    bad = {"resourceType": "Patient", "id": "p1", "active": "true", "gender": "mmale", "name": [{}]}
    response = api.post(url, json=bad)
    assert response.status_code == 200
    assert _issues(response) == [
        ("error", "value", ["Patient.active"]),
        ("error", "code-invalid", ["Patient.gender"]),
        ("error", "structure", ["Patient.name[0]"]),
    ]
    assert store.stats()["versions"] == before  # $validate never writes


def test_validate_takes_a_parameters_body_with_mode(api: TestClient) -> None:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                          "valueInteger": "42"}},
        {"name": "mode", "valueCode": "create"},
    ]}  # fmt: skip
    response = api.post("/Observation/$validate", json=params)
    assert response.status_code == 200 and _issues(response) == [("error", "value", ["Observation.valueInteger"])]
    update = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "gender": "male"}},
        {"name": "mode", "valueCode": "update"},
    ]}  # fmt: skip
    assert _issues(api.post("/Patient/$validate", json=update)) == [("error", "required", ["Patient.id"])]
    delete = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    assert _issues(api.post("/Patient/p1/$validate", json=delete))[0][0] == "information"
    assert _issues(api.post("/Patient/nobody/$validate", json=delete))[0][:2] == ("error", "not-found")
    # a Parameters resource without a `resource` parameter is itself what is validated
    assert _issues(api.post("/$validate", json={"resourceType": "Parameters", "parameter": [{"name": "x", "valueInteger": 1}]}))[0][0] == "information"


def test_validate_content_that_is_not_json_is_fatal(api: TestClient) -> None:
    response = api.post("/$validate", content=b"{not json", headers=FHIR)
    assert response.status_code == 200 and _issues(response)[0][:2] == ("fatal", "structure")


def test_validate_profiles(api: TestClient) -> None:
    base = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient("p9", "X")},
        {"name": "profile", "valueUri": "http://hl7.org/fhir/StructureDefinition/Patient"},
    ]}  # fmt: skip
    assert _issues(api.post("/$validate", json=base))[0][0] == "information"
    base["parameter"][1]["valueUri"] = "http://example.org/fhir/StructureDefinition/uk-patient"
    response = api.post("/$validate", json=base)
    assert response.status_code == 400 and _issues(response)[0][:2] == ("error", "not-supported")
    claimed = patient("p9", "X", meta={"profile": ["http://example.org/fhir/StructureDefinition/uk-patient"]})
    assert [i[:2] for i in _issues(api.post("/$validate", json=claimed))] == [
        ("information", "informational"), ("warning", "not-supported")]  # fmt: skip


def test_validate_type_and_id_must_match_the_url(api: TestClient) -> None:
    assert api.post("/Observation/$validate", json=patient("p1", "X")).status_code == 400
    assert _issues(api.post("/Patient/p1/$validate", json=patient("p2", "X")))[0] == ("error", "invalid", ["Patient.id"])


# -- statuses ------------------------------------------------------------------------------------
def test_post_assigns_the_id(api: TestClient, store: Store) -> None:
    response = api.post("/Patient", json=patient("client-chosen", "Okafor"), headers=FHIR)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] != "client-chosen" and created["meta"]["versionId"] == "1"
    assert response.headers["location"].endswith(f"/Patient/{created['id']}/_history/1")
    with pytest.raises(Exception, match="does not exist"):
        store.read("Patient", "client-chosen")


def test_decimals_keep_their_digits_over_rest(api: TestClient, store: Store) -> None:
    body = json.dumps(observation("x", "Patient/p1", "2339-0", "2024-01-01", valueQuantity={"value": 5.40, "unit": "mmol/L"}))
    body = body.replace("5.4,", "5.40,")
    created = api.post("/Observation", content=body.encode(), headers=FHIR)
    assert created.status_code == 201 and '"value":5.40' in created.text
    assert '"value":5.40' in store.read_text("Observation", created.json()["id"])


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "code"),
    [
        ("POST", "/Patient", {"resourceType": "Patient", "gender": "mmale"}, 422, "code-invalid"),
        ("POST", "/Patient", {"resourceType": "Patient", "birthDate": None}, 422, "structure"),
        ("PUT", "/Patient/p1", {"resourceType": "Patient", "id": "p1", "active": 1}, 422, "value"),
        ("POST", "/Patient", b"{not json", 400, "invalid"),
        ("POST", "/Patient", {"resourceType": "Observation"}, 400, "invalid"),
        ("PUT", "/Patient/p1", {"resourceType": "Patient", "id": "other"}, 400, "invalid"),
        ("GET", "/Patient/missing", None, 404, "not-found"),
        ("GET", "/Spaceship", None, 404, "not-found"),
        ("GET", "/Spaceship/1", None, 404, "not-found"),
        ("GET", "/a/b/c/d/e", None, 404, "not-found"),
        ("PATCH", "/Patient/p1", {}, 405, "not-supported"),
        ("DELETE", "/Patient", None, 405, "not-supported"),
        ("PUT", "/Patient", {"resourceType": "Patient"}, 405, "not-supported"),
        ("POST", "/Patient/p1", {"resourceType": "Patient"}, 405, "not-supported"),
        ("GET", "/", None, 405, "not-supported"),
        ("POST", "/$unknown-op", {}, 400, "not-supported"),
        ("POST", "/Patient/$unknown-op", {}, 400, "not-supported"),
        ("GET", "/Patient/p1/$unknown-op", None, 400, "not-supported"),
        ("GET", "/$validate", None, 400, "not-supported"),
        ("GET", "/Patient?colour=red", None, 400, "not-supported"),
    ],
)
def test_errors_are_operation_outcomes_with_their_status(
    api: TestClient, method: str, url: str, body: Any, status: int, code: str
) -> None:
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    response = api.request(method, url, content=content, headers=FHIR if content else None)
    assert response.status_code == status, response.text
    assert _issues(response)[0][1] == code


def test_an_unknown_operation_is_never_taken_as_a_type(api: TestClient, store: Store) -> None:
    response = api.post("/$everything", json={"resourceType": "Patient"})
    assert response.status_code == 400 and "$everything" in response.json()["issue"][0]["diagnostics"]
    assert store.stats()["resources"] == 1


def test_409_412_415_and_410(api: TestClient, store: Store) -> None:
    stale = api.put("/Patient/p1", json=patient("p1", "Thompson-Smith"), headers={"If-Match": 'W/"9"'})
    assert stale.status_code == 412 and _issues(stale)[0][1] == "conflict"
    xml = api.post("/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'/>", headers={"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415 and _issues(xml)[0][1] == "not-supported"
    twice = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("t1", "A"), "request": {"method": "PUT", "url": "Patient/t1"}},
        {"resource": patient("t1", "B"), "request": {"method": "PUT", "url": "Patient/t1"}},
    ]}  # fmt: skip
    conflict = api.post("/", json=twice)
    assert conflict.status_code == 409 and _issues(conflict)[0][1] == "duplicate"
    assert api.delete("/Patient/p1").status_code == 204
    gone = api.get("/Patient/p1")
    assert gone.status_code == 410 and _issues(gone)[0][1] == "deleted"


def test_store_create_of_an_existing_id_is_409(store: Store) -> None:
    from local_fhir import Duplicate

    store.create(patient("dup", "A"))
    with pytest.raises(Duplicate) as err:
        store.create(patient("dup", "A"))
    assert err.value.status == 409


def test_update_statuses_and_headers(api: TestClient) -> None:
    created = api.put("/Patient/new", json=patient("new", "Khan"))
    assert created.status_code == 201 and created.headers["etag"] == 'W/"1"' and "location" in created.headers
    updated = api.put("/Patient/new", json=patient("new", "Khan-Ali"), headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"


def test_capability_statement_lists_validate(api: TestClient) -> None:
    cap = api.get("/metadata").json()
    assert {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"} in cap["rest"][0]["operation"]
