"""`import --lenient` and the quarantine (issue 17): a hospital export's valid resources are stored,
each invalid one is kept with its problems, nothing is left out silently, and the app can tell
that part of a patient's record is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fhir_builders import observation, patient

from clarke_desktop.fhir.client import quarantined_for_patient
from clarke_desktop.fhir.local import LocalFhirClient
from local_fhir import NotFound, Store
from local_fhir.cli import main


def _export(folder: Path) -> list[Path]:
    """A patient's export as the issue describes it: one DiagnosticReport lacks `code`, one
    Encounter lacks `class` (both required in R4), an Observation points at that Encounter;
    plus an NDJSON file with a bad line and a line that is not JSON."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": patient("p1", "Thompson", gender="female")},
        {"fullUrl": "urn:uuid:e", "resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                                               "subject": {"reference": "urn:uuid:p"}}},
        {"resource": {"resourceType": "DiagnosticReport", "id": "d1", "status": "final",
                      "subject": {"reference": "urn:uuid:p"}, "encounter": {"reference": "urn:uuid:e"}}},
        {"resource": observation("o1", "urn:uuid:p", "2339-0", "2024-01-01", encounter={"reference": "urn:uuid:e"})},
        {"resource": {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "urn:uuid:p"},
                      "code": {"text": "Penicillin"}}},
    ]}  # fmt: skip
    (folder / "export.json").write_text(json.dumps(bundle))
    lines = [
        json.dumps(observation("o2", "Patient/p1", "2339-0", "2024-02-01")),
        json.dumps(observation("o3", "Patient/p1", "2339-0", "2024-03-01", valueInteger="7")),
        "{not json",
    ]
    (folder / "more.ndjson").write_text("\n".join(lines) + "\n")
    return [folder / "export.json", folder / "more.ndjson"]


def test_default_import_stays_strict(store: Store, tmp_path: Path) -> None:
    report = store.import_paths(_export(tmp_path))
    assert not report.ok and len(report.failed) == 2
    assert store.stats()["resources"] == 0 and store.quarantine_list() == []


def test_lenient_import_stores_the_rest_and_quarantines_the_invalid(store: Store, tmp_path: Path) -> None:
    report = store.import_paths(_export(tmp_path), lenient=True)
    assert report.ok and report.quarantined == 4
    assert store.stats()["by_type"] == {"AllergyIntolerance": 1, "Observation": 2, "Patient": 1}
    bundle_file, ndjson_file = report.files
    assert [(q["resourceType"], q["id"]) for q in bundle_file.quarantined] == [("Encounter", "e1"), ("DiagnosticReport", "d1")]
    assert "Encounter).class" in bundle_file.quarantined[0]["first_problem"]
    assert "DiagnosticReport).code" in bundle_file.quarantined[1]["first_problem"]
    # what points at a quarantined resource is reported: a stored Observation, a quarantined report
    assert {(r["from"], r["to"]) for r in bundle_file.references_to_quarantined} == {
        ("Observation/o1", "Encounter/e1"), (f"quarantine/{bundle_file.quarantined[1]['qid']}", "Encounter/e1")}  # fmt: skip
    assert [(q["resourceType"], q["id"]) for q in ndjson_file.quarantined] == [("Observation", "o3"), (None, None)]
    assert ndjson_file.to_dict()["quarantined"][0]["source"].endswith("more.ndjson: line 2")
    # references were rewritten as for the stored resources
    entry = store.quarantine_get(bundle_file.quarantined[1]["qid"])
    assert entry["resource"]["encounter"] == {"reference": "Encounter/e1"} and entry["patients"] == ["p1"]
    assert entry["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource.ofType(DiagnosticReport).code"]
    assert store.quarantine_get(ndjson_file.quarantined[1]["qid"])["text"] == "{not json"


def test_patient_counts_for_the_app_warning(store: Store, tmp_path: Path) -> None:
    store.import_paths(_export(tmp_path), lenient=True)
    assert store.quarantined_for_patient("p1") == {"DiagnosticReport": 1, "Encounter": 1, "Observation": 1}
    assert store.quarantined_for_patient("someone-else") == {}
    client = LocalFhirClient(store)
    assert quarantined_for_patient(client, "p1") == {"DiagnosticReport": 1, "Encounter": 1, "Observation": 1}
    assert quarantined_for_patient(object(), "p1") == {}  # type: ignore[arg-type]  # e.g. a remote server
    assert [e["resourceType"] for e in store.quarantine_list(patient="p1")] == ["Encounter", "DiagnosticReport", "Observation"]
    assert [e["id"] for e in store.quarantine_list(rtype="Encounter")] == ["e1"]


def test_retry_drop_and_resolution(store: Store, tmp_path: Path) -> None:
    report = store.import_paths(_export(tmp_path), lenient=True)
    encounter, report_entry = (q["qid"] for q in report.files[0].quarantined)
    obs_entry, junk = (q["qid"] for q in report.files[1].quarantined)
    still = store.quarantine_retry(encounter)
    assert not still["stored"] and still["outcome"]["issue"][0]["expression"] == ["Encounter.class"]
    fixed = {**store.quarantine_get(encounter)["resource"], "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}
    done = store.quarantine_retry(encounter, fixed)
    assert done == {"qid": encounter, "stored": True, "location": "Encounter/e1/_history/1"}
    assert store.read("Encounter", "e1")["class"]["code"] == "AMB"
    wrong = store.quarantine_retry(report_entry, patient("p1", "X"))
    assert not wrong["stored"] and store.quarantined_for_patient("p1") == {"DiagnosticReport": 1, "Observation": 1}
    # writing a valid version by any route resolves the entry
    store.update(observation("o3", "Patient/p1", "2339-0", "2024-03-01", valueInteger=7))
    assert store.quarantined_for_patient("p1") == {"DiagnosticReport": 1}
    store.quarantine_drop(report_entry)
    store.quarantine_drop(junk)
    assert store.quarantine_list() == [] and store.quarantined_for_patient("p1") == {}
    with pytest.raises(NotFound):
        store.quarantine_drop(obs_entry)


def test_reimporting_replaces_an_entry_instead_of_adding_one(store: Store, tmp_path: Path) -> None:
    files = _export(tmp_path)
    store.import_paths(files, lenient=True)
    store.import_paths(files, lenient=True)
    assert len(store.quarantine_list()) == 4


def test_lenient_fallback_path_for_bundles_that_need_the_store(store: Store, tmp_path: Path) -> None:
    """A transaction with a conditional reference is imported resource by resource (not in a worker)."""
    store.create(patient("p1", "Thompson", identifier=[{"system": "urn:mrn", "value": "1"}]))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("ok", "Patient?identifier=urn:mrn|1", "1", "2024-01-01"),
         "request": {"method": "PUT", "url": "Observation/ok"}},
        {"resource": {"resourceType": "Encounter", "id": "bad", "status": "finished", "subject": {"reference": "Patient?identifier=urn:mrn|1"}},
         "request": {"method": "PUT", "url": "Encounter/bad"}},
    ]}  # fmt: skip
    (tmp_path / "tx.json").write_text(json.dumps(bundle))
    assert not store.import_paths([tmp_path / "tx.json"]).ok
    report = store.import_paths([tmp_path / "tx.json"], lenient=True)
    assert report.ok and report.resources == 1 and store.read("Observation", "ok")["subject"] == {"reference": "Patient/p1"}
    assert store.quarantined_for_patient("p1") == {"Encounter": 1}


def test_a_store_without_the_quarantine_table_reads_as_empty(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with Store(db) as store:
        store.create(patient("p1", "Thompson"))
        store._conn().execute("DROP TABLE quarantine")
    with Store(db, read_only=True) as old:
        assert old.quarantined_for_patient("p1") == {} and old.quarantine_list() == []


def _cli(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(main, list(args))


def test_cli_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "f.sqlite3")
    files = [str(p) for p in _export(tmp_path)]
    strict = _cli(runner, "import", "--db", db, *files)
    assert strict.exit_code == 1 and json.loads(strict.stdout)["quarantined"] == 0
    lenient = _cli(runner, "import", "--lenient", "--db", db, *files)
    assert lenient.exit_code == 0, lenient.output
    assert json.loads(lenient.stdout)["quarantined"] == 4
    assert "Observation/o1 points at Encounter/e1, which is quarantined" in lenient.stderr
    assert "quarantine list" in lenient.stderr
    listed = json.loads(_cli(runner, "quarantine", "list", "--db", db).stdout)
    assert [e["resourceType"] for e in listed] == ["Encounter", "DiagnosticReport", "Observation", None]
    qid = str(listed[0]["qid"])
    shown = json.loads(_cli(runner, "quarantine", "show", "--db", db, qid).stdout)
    assert shown["referenced_by"] == ["Observation/o1", f"quarantine/{listed[1]['qid']}"]
    again = _cli(runner, "quarantine", "retry", "--db", db, qid)
    assert again.exit_code == 1 and json.loads(again.stdout)[0]["stored"] is False
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**shown["resource"], "class": {"code": "AMB"}}))
    stored = _cli(runner, "quarantine", "retry", "--db", db, qid, "--file", str(fixed))
    assert stored.exit_code == 0 and json.loads(stored.stdout)[0]["location"] == "Encounter/e1/_history/1"
    dropped = _cli(runner, "quarantine", "drop", "--db", db, "--all")
    assert dropped.exit_code == 0 and len(json.loads(dropped.stdout)["dropped"]) == 3
    assert json.loads(_cli(runner, "quarantine", "list", "--db", db).stdout) == []
    assert _cli(runner, "quarantine", "show", "--db", db, qid).exit_code == 1
    assert _cli(runner, "quarantine", "retry", "--db", db).exit_code == 2  # usage: no QID
