"""LocalFhirClient and RemoteFhirClient: the same calls against the store and `local-fhir serve`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhir_builders import observation, patient

from clarke_desktop.fhir.client import FhirClient, FhirInvalid, FhirNotFound, FhirUnavailable
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.fhir.remote import RemoteFhirClient
from local_fhir import Store

TOKEN = "clients-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(db: Path) -> None:
    with Store(db) as store:
        store.create(patient("p1", "Thompson"))
        for i in range(7):
            store.create(observation(f"o{i}", "Patient/p1", "2339-0", f"2024-03-0{i + 1}"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("served") / "fhir.sqlite3"
    _seed(db)
    token_file = db.with_name("token")
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_fhir", "serve", "--db", str(db), "--port", str(port),
         "--token-file", str(token_file)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/metadata", timeout=1, headers=AUTH)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError(
                        proc.stderr.read().decode() if proc.stderr else "serve exited"
                    ) from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["local", "remote"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirClient]:
    if request.param == "local":
        db = tmp_path / "fhir.sqlite3"
        _seed(db)
        c: FhirClient = LocalFhirClient(db)
    else:
        c = RemoteFhirClient(request.getfixturevalue("server"), headers=AUTH)
    yield c
    c.close()


def test_protocol(client: FhirClient) -> None:
    assert isinstance(client, FhirClient)


def test_read_search_and_paging(client: FhirClient) -> None:
    assert client.read("Patient", "p1")["name"][0]["family"] == "Thompson"
    page = client.search("Observation", {"patient": "p1", "_count": "3", "_sort": "-date"})
    assert page["total"] == 7 and len(page["entry"]) == 3
    assert any(link["relation"] == "next" for link in page["link"])
    everything = client.search_all("Observation", {"patient": "p1", "_count": "3", "_sort": "-date"})
    assert [r["id"] for r in everything] == [f"o{i}" for i in range(6, -1, -1)]
    assert len(client.search_all("Observation", "patient=p1&_count=2")) == 7


def test_write_calls_and_versions(client: FhirClient) -> None:
    created = client.create({"resourceType": "Patient", "name": [{"family": "Okafor"}]})
    pid = created["id"]
    updated = client.update({**created, "name": [{"family": "Okafor", "given": ["Emeka"]}]})
    assert updated["meta"]["versionId"] == "2"
    assert client.vread("Patient", pid, "1")["name"][0] == {"family": "Okafor"}
    client.delete("Patient", pid)
    with pytest.raises(FhirNotFound):
        client.read("Patient", pid)


def test_transaction_and_compartment(client: FhirClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "name": [{"family": "Khan"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Condition", "subject": {"reference": "urn:uuid:p"},
                                               "code": {"text": "Asthma"}}, "request": {"method": "POST", "url": "Condition"}},
    ]}  # fmt: skip
    response = client.transaction(bundle)
    pid = response["entry"][0]["response"]["location"].split("/")[1]
    compartment = client.patient_compartment(pid)
    assert sorted(r["resourceType"] for r in compartment) == ["Condition", "Patient"]


def test_errors_map_to_the_client_errors(client: FhirClient) -> None:
    with pytest.raises(FhirNotFound):
        client.read("Patient", "missing")
    with pytest.raises(FhirInvalid) as err:
        client.search("Patient", {"colour": "red"})
    assert "colour" in str(err.value) and err.value.outcome is not None
    with pytest.raises(FhirInvalid) as err:
        client.create({"resourceType": "Patient", "birthDate": "soon"})
    assert err.value.outcome["issue"][0]["expression"] == ["Patient.birthDate"]


def test_remote_unreachable_is_unavailable() -> None:
    client = RemoteFhirClient(f"http://127.0.0.1:{_free_port()}", timeout=2)
    with pytest.raises(FhirUnavailable):
        client.read("Patient", "p1")
    client.close()


def test_local_missing_or_corrupt_database_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FhirUnavailable):
        LocalFhirClient(tmp_path / "missing.sqlite3")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"garbage" * 1000)
    with pytest.raises(FhirUnavailable):
        LocalFhirClient(junk)


def test_metadata_and_loopback_only(server: str) -> None:
    cap = httpx.get(f"{server}/metadata", headers=AUTH).json()
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"
    appointment = next(r for r in cap["rest"][0]["resource"] if r["type"] == "Appointment")
    assert {"date", "actor"} <= {p["name"] for p in appointment["searchParam"]}
    assert server.startswith("http://127.0.0.1:")


def test_rest_history_post_search_and_bad_bodies(server: str) -> None:
    history = httpx.get(f"{server}/Patient/p1/_history", headers=AUTH).json()
    assert history["type"] == "history" and history["entry"][0]["resource"]["id"] == "p1"
    found = httpx.post(
        f"{server}/Observation/_search", data={"patient": "p1", "_count": "2"}, headers=AUTH
    ).json()
    assert found["total"] == 7 and len(found["entry"]) == 2
    bad = httpx.post(
        f"{server}/Patient", content=b"{not json", headers={"Content-Type": "application/fhir+json", **AUTH}
    )
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    wrong = httpx.put(f"{server}/Patient/p1", json={"resourceType": "Patient", "id": "other"}, headers=AUTH)
    assert wrong.status_code == 400
    created = httpx.put(
        f"{server}/Patient/fresh", json={"resourceType": "Patient", "id": "fresh"}, headers=AUTH
    )
    assert created.status_code == 201 and created.headers["etag"] == 'W/"1"'
