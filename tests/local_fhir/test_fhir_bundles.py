"""transaction and batch Bundles: reference rewriting, conditional operations, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_builders import observation, patient

from local_fhir import Conflict, InvalidResource, Store

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _tx(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(full_url: str, resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def test_transaction_rewrites_urn_uuid_references(store: Store) -> None:
    pat = {"resourceType": "Patient", "name": [{"family": "Khan"}]}
    obs = observation("ignored", "urn:uuid:11111111-1111-1111-1111-111111111111", "1", "2024-01-01")
    del obs["id"]
    response = store.process_bundle(
        _tx(_post("urn:uuid:11111111-1111-1111-1111-111111111111", pat), _post("urn:uuid:2", obs))
    )
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    pid = response["entry"][0]["response"]["location"].split("/")[1]
    oid = response["entry"][1]["response"]["location"].split("/")[1]
    assert pid != "11111111-1111-1111-1111-111111111111"  # POST: the server assigns ids
    assert store.read("Observation", oid)["subject"]["reference"] == f"Patient/{pid}"
    assert store.search("Observation", {"patient": pid})["total"] == 1


def test_transaction_is_all_or_nothing(store: Store) -> None:
    good = {"resourceType": "Patient", "name": [{"family": "Patel"}]}
    bad = {"resourceType": "Observation", "code": {"text": "no status"}}
    with pytest.raises(InvalidResource) as err:
        store.process_bundle(_tx(_post("urn:uuid:a", good), _post("urn:uuid:b", bad)))
    assert err.value.outcome["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource")
    assert store.stats()["resources"] == 0


def test_transaction_rolls_back_after_writes_started(store: Store) -> None:
    store.create(patient("p1", "Williams"))
    bundle = _tx(
        {"resource": patient("p1", "Williams-Jones"), "request": {"method": "PUT", "url": "Patient/p1"}},
        {
            "request": {"method": "PUT", "url": "Patient/p9"},
            "resource": patient("p9", "X"),
            "fullUrl": "Patient/p9",
        },
        {"request": {"method": "DELETE", "url": "Patient?name=nobody-matches-this"}},
        _post("urn:uuid:c", observation("x", "Patient?identifier=missing|1", "1")),  # no match -> fails
    )
    with pytest.raises(Conflict, match="matched no"):
        store.process_bundle(bundle)
    assert store.read("Patient", "p1")["name"][0]["family"] == "Williams"
    assert store.stats()["resources"] == 1


def test_conditional_reference_and_if_none_exist(store: Store) -> None:
    store.create(patient("p1", "Thompson", identifier=[{"system": NHS, "value": "9434765919"}]))
    obs = observation("x", f"Patient?identifier={NHS}|9434765919", "1")
    del obs["id"]
    again = patient("other", "Thompson", identifier=[{"system": NHS, "value": "9434765919"}])
    response = store.process_bundle(
        _tx(_post("urn:uuid:o", obs), _post("urn:uuid:p", again, ifNoneExist=f"identifier={NHS}|9434765919"))
    )
    assert response["entry"][1]["response"]["status"] == "200 OK"
    assert response["entry"][1]["response"]["location"] == "Patient/p1"
    oid = response["entry"][0]["response"]["location"].split("/")[1]
    assert store.read("Observation", oid)["subject"]["reference"] == "Patient/p1"
    assert store.search("Patient", {})["total"] == 1


def test_put_delete_and_get_entries(store: Store) -> None:
    store.create(patient("p1", "Okafor"))
    store.create(patient("p2", "Gone"))
    response = store.process_bundle(
        _tx(
            {"resource": patient("p1", "Okafor", "Emeka"), "request": {"method": "PUT", "url": "Patient/p1"}},
            {"request": {"method": "DELETE", "url": "Patient/p2"}},
            {"resource": patient("p3", "New"), "request": {"method": "PUT", "url": "Patient?name=nomatch"}},
            {"request": {"method": "GET", "url": "Patient?name=okafor"}},
        )
    )
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["200 OK", "204 No Content", "201 Created", "200 OK"]
    assert store.read("Patient", "p1")["meta"]["versionId"] == "2"
    assert store.search("Patient", {"_id": "p2"})["total"] == 0
    assert store.read("Patient", "p3")["name"][0]["family"] == "New"
    assert response["entry"][3]["resource"]["total"] == 1


def test_conditional_put_matching_several_is_refused(store: Store) -> None:
    store.create(patient("a", "Same"))
    store.create(patient("b", "Same"))
    with pytest.raises(Conflict, match="more than one"):
        store.process_bundle(
            _tx({"resource": patient("c", "Same"), "request": {"method": "PUT", "url": "Patient?name=same"}})
        )


def test_unresolved_urn_reference_is_refused(store: Store) -> None:
    obs = observation("x", "urn:uuid:nowhere", "1")
    with pytest.raises(InvalidResource, match="urn:uuid:nowhere"):
        store.process_bundle(_tx(_post("urn:uuid:o", obs)))
    assert store.stats()["resources"] == 0


def test_batch_reports_each_entry(store: Store) -> None:
    good = {"resourceType": "Patient", "name": [{"family": "Ok"}]}
    bad = {"resourceType": "Patient", "birthDate": "not a date"}
    response = store.process_bundle(
        _tx(
            _post("urn:uuid:1", good),
            _post("urn:uuid:2", bad),
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"request": {"method": "DELETE", "url": "Patient/missing"}},
            kind="batch",
        )
    )
    assert response["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1] == "422 Unprocessable Entity"
    assert (
        response["entry"][1]["response"]["outcome"]["issue"][0]["expression"][0]
        == "Bundle.entry[1].resource.ofType(Patient).birthDate"
    )
    assert statuses[2] == "404 Not Found"
    assert statuses[3] == "204 No Content"  # deleting what is not there is not an error in a batch
    assert store.stats()["resources"] == 1


def test_bundle_type_and_structure_errors(store: Store) -> None:
    with pytest.raises(InvalidResource, match="collection"):
        store.process_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})
    with pytest.raises(InvalidResource, match="request"):
        store.process_bundle(_tx({"resource": patient("p", "x")}))
    with pytest.raises(InvalidResource):
        store.process_bundle({"resourceType": "Patient"})
