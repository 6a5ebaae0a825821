"""Create, read, versioning, history, delete and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir_builders import observation, patient

from local_fhir import Conflict, Gone, InvalidResource, NotFound, Store


def test_create_assigns_id_and_meta(store: Store) -> None:
    stored = store.create({"resourceType": "Patient", "name": [{"family": "Okafor"}]})
    assert stored["id"]
    assert stored["meta"]["versionId"] == "1"
    assert stored["meta"]["lastUpdated"].endswith("Z")
    assert store.read("Patient", stored["id"]) == stored


def test_create_refuses_an_existing_id(store: Store) -> None:
    store.create(patient("p1", "Khan"))
    with pytest.raises(Conflict):
        store.create(patient("p1", "Khan"))


def test_update_keeps_every_version(store: Store) -> None:
    store.create(patient("p1", "Patel"))
    v2 = store.update(patient("p1", "Patel-Shah"))
    assert v2["meta"]["versionId"] == "2"
    assert store.vread("Patient", "p1", "1")["name"][0]["family"] == "Patel"
    assert store.read("Patient", "p1")["name"][0]["family"] == "Patel-Shah"
    history = store.history("Patient", "p1")
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_identical_update_makes_no_new_version(store: Store) -> None:
    store.create(patient("p1", "Williams"))
    again = store.update(patient("p1", "Williams"))
    assert again["meta"]["versionId"] == "1"


def test_update_as_create_and_if_match(store: Store) -> None:
    created = store.update(patient("new", "Thompson"))
    assert created["meta"]["versionId"] == "1"
    with pytest.raises(Conflict):
        store.update(patient("new", "Thompson-Smith"), if_match="7")
    assert store.update(patient("new", "Thompson-Smith"), if_match="1")["meta"]["versionId"] == "2"


def test_delete_is_versioned(store: Store) -> None:
    store.create(patient("p1", "Khan"))
    store.delete("Patient", "p1")
    with pytest.raises(Gone):
        store.read("Patient", "p1")
    assert store.vread("Patient", "p1", "1")["name"][0]["family"] == "Khan"
    history = store.history("Patient", "p1")
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert store.search("Patient", {"name": "khan"})["total"] == 0
    store.update(patient("p1", "Khan"))  # resurrect
    assert store.read("Patient", "p1")["meta"]["versionId"] == "3"
    with pytest.raises(NotFound):
        store.delete("Patient", "never-existed")


def test_read_missing(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        store.read("Patient", "nope")
    assert err.value.outcome["issue"][0]["code"] == "not-found"
    with pytest.raises(NotFound):
        store.vread("Patient", "nope", "1")


def test_invalid_resource_lists_each_problem_with_its_path(store: Store) -> None:
    bad = {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1950-13-45",
        "name": [{"family": 5}],
        "colour": "blue",
    }
    with pytest.raises(InvalidResource) as err:
        store.create(bad)
    paths = {i["expression"][0] for i in err.value.outcome["issue"]}
    assert {"Patient.birthDate", "Patient.name[0].family", "Patient.colour"} <= paths
    assert store.stats()["resources"] == 0


def test_invalid_type_and_id(store: Store) -> None:
    with pytest.raises(InvalidResource, match="unknown resourceType"):
        store.create({"resourceType": "Spaceship"})
    with pytest.raises(InvalidResource, match="not a valid FHIR id"):
        store.create({"resourceType": "Patient", "id": "has space"})
    with pytest.raises(InvalidResource, match="resourceType"):
        store.create({"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidResource):
        store.update({"resourceType": "Observation", "id": "o1", "code": {"text": "x"}})  # no status


def test_original_json_kept_exactly(store: Store, tmp_path: Path) -> None:
    text = '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"Weight"},"valueQuantity":{"value":87.940,"unit":"kg"},"effectiveDateTime":"2024-05-01T10:00:00+00:00"}'
    (tmp_path / "o.ndjson").write_text(text + "\n")
    assert store.import_paths([tmp_path / "o.ndjson"]).ok
    kept = store.read_text("Observation", "o1")
    assert '"value":87.940' in kept
    assert '"effectiveDateTime":"2024-05-01T10:00:00+00:00"' in kept
    doc = json.loads(kept)
    assert doc["meta"]["versionId"] == "1"
    exported = tmp_path / "out"
    store.export_ndjson(exported)
    assert '"value":87.940' in (exported / "Observation.ndjson").read_text()


def test_other_types_are_stored_and_searchable_by_id(store: Store) -> None:
    store.create({"resourceType": "Basic", "id": "b1", "code": {"text": "note"}})
    assert store.read("Basic", "b1")["code"]["text"] == "note"
    assert store.search("Basic", {"_id": "b1"})["total"] == 1
    assert store.search("Basic", {"_lastUpdated": "gt2000"})["total"] == 1


def test_store_missing_or_corrupt(tmp_path: Path) -> None:
    from local_fhir import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="no FHIR database"):
        Store(tmp_path / "missing.sqlite3", create=False)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable):
        Store(junk)


def test_threads_share_a_store(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def write(i: int) -> str:
        return store.create(observation(f"o{i}", "Patient/p1", "1234-5", "2024-01-01"))["id"]

    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(write, range(40)))
    assert len(set(written)) == 40
    assert store.search("Observation", {"subject": "Patient/p1", "_summary": "count"})["total"] == 40


def test_every_commit_is_synced_as_the_app_database_is(tmp_path) -> None:
    """synchronous=FULL: a write-back the app database records as done survives a power cut."""
    from local_fhir.store import Store

    store = Store(tmp_path / "sync.sqlite3")
    try:
        assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()
