"""Parameters read through others' rows (Observation `patient` = `subject` rows pointing at a
Patient; `combo-code` = `code` + `component-code` rows) find exactly what their own rows would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhir_builders import observation, patient

from local_fhir import Store
from local_fhir.indexing import param_rows
from local_fhir.jsontext import loads_exact
from local_fhir.searchparams import registry

REPO = Path(__file__).resolve().parents[2]


def _resources(shared_dir: Path) -> list[dict[str, Any]]:
    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:8]
    files += sorted((REPO / "resources" / "fhir" / "demo").glob("*.json"))
    return [e["resource"] for f in files for e in loads_exact(f.read_bytes())["entry"]]


def test_the_aliases_are_the_ones_expected() -> None:
    reg = registry()
    assert reg.stored_as("Observation", "patient") == (("subject", "Patient"),)
    assert reg.stored_as("Encounter", "patient") == (("subject", "Patient"),)
    assert reg.stored_as("Observation", "combo-code") == (("code", None), ("component-code", None))
    assert reg.stored_as("Observation", "combo-value-quantity") == (
        ("component-value-quantity", None),
        ("value-quantity", None),
    )
    assert reg.stored_as("AllergyIntolerance", "patient") == (("patient", None),)  # its own element
    assert reg.stored_as("Observation", "subject") == (("subject", None),)
    for (rtype, _), via in reg.aliases.items():  # stored rows are never aliases themselves
        assert all((rtype, name) not in reg.aliases for name, _ in via)
    assert all((rtype, p.code) not in reg.aliases for rtype, params in reg.indexed.items() for p in params)


def test_an_alias_reads_the_same_rows_its_own_expression_gives(shared_dir: Path) -> None:
    reg = registry()
    checked = with_rows = 0
    for resource in _resources(shared_dir):
        rtype = resource["resourceType"]
        for code, param in reg.params(rtype).items():
            via = reg.aliases.get((rtype, code))
            if via is None or param.expression is None:
                continue
            own = {row[1:] for row in param_rows(resource, param)}
            stored = set()
            for name, target in via:
                rows = param_rows(resource, reg.params(rtype)[name])
                stored |= {row[1:] for row in rows if target is None or row[1] == target}
            assert stored == own, (rtype, code, resource["id"])
            checked += 1
            with_rows += bool(own)
    assert checked > 3000 and with_rows > 1500


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])]


def test_searches_through_aliases(store: Store) -> None:
    store.update(patient("p1", "Alpha"))
    store.update(patient("p2", "Beta"))
    store.update({"resourceType": "Group", "id": "g1", "type": "person", "actual": True})
    component = {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 80, "unit": "mm[Hg]"}}  # fmt: skip
    store.update(observation("o1", "Patient/p1", "8480-6", "2024-01-01", component=[component]))
    store.update(observation("o2", "Patient/p2", "2339-0", "2024-02-01"))
    store.update(observation("o3", "Group/g1", "8480-6", "2024-03-01"))
    store.update({"resourceType": "Encounter", "id": "e1", "status": "finished",
                  "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}})  # fmt: skip

    def ids(rtype: str, query: str) -> list[str]:
        return sorted(_ids(store.search(rtype, query)))

    assert ids("Observation", "patient=p1") == ["Observation/o1"]
    assert ids("Observation", "patient=Patient/p2") == ["Observation/o2"]
    assert ids("Observation", "subject=g1") == ["Observation/o3"]
    assert ids("Observation", "patient=g1") == []  # a Group is not a patient
    assert ids("Observation", "patient:missing=true") == ["Observation/o3"]
    assert ids("Observation", "patient:Patient.name=beta") == ["Observation/o2"]
    assert ids("Observation", "combo-code=8462-4") == ["Observation/o1"]  # from a component
    assert ids("Observation", "combo-code=http://loinc.org|8480-6") == ["Observation/o1", "Observation/o3"]
    assert ids("Observation", "combo-code:not=8480-6") == ["Observation/o2"]
    assert ids("Observation", "combo-value-quantity=80") == ["Observation/o1"]
    assert ids("Observation", "combo-value-quantity:missing=true") == ["Observation/o2", "Observation/o3"]
    assert _ids(store.search("Observation", "_sort=combo-code,_id")) == [
        "Observation/o2", "Observation/o1", "Observation/o3"]  # fmt: skip
    included = store.search("Observation", "_id=o1,o3&_include=Observation:patient")
    assert sorted(_ids(included)) == ["Observation/o1", "Observation/o3", "Patient/p1"]
    revincluded = store.search(
        "Patient", "_id=p1&_revinclude=Observation:patient&_revinclude=Encounter:patient"
    )
    assert sorted(_ids(revincluded)) == ["Encounter/e1", "Observation/o1", "Patient/p1"]
    assert ids("Encounter", "patient=p1") == ["Encounter/e1"]
    # Encounter is in the compartment through `patient`, which reads `subject` rows.
    compartment = sorted(f"{r['resourceType']}/{r['id']}" for r in store.patient_compartment("p1"))
    assert compartment == ["Encounter/e1", "Observation/o1", "Patient/p1"]


def test_aliases_are_not_stored(store: Store) -> None:
    store.update(patient("p1", "Alpha"))
    store.update(observation("o1", "Patient/p1", "8480-6", "2024-01-01"))
    params = {row[0] for row in store._conn().execute("SELECT param FROM idx_reference")}
    params |= {row[0] for row in store._conn().execute("SELECT param FROM idx_token")}
    assert "subject" in params and "code" in params
    assert not params & {"patient", "combo-code"}


def test_a_store_indexed_before_aliases_is_reindexed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with Store(path) as old:
        old.update(patient("p1", "Alpha"))
        old.update(observation("o1", "Patient/p1", "8480-6", "2024-01-01"))
        conn = old._conn()
        conn.execute("INSERT INTO idx_reference (rid, rtype, param, target_type, target_id, url) "
                     "SELECT rid, rtype, 'patient', target_type, target_id, url FROM idx_reference "
                     "WHERE param = 'subject'")  # fmt: skip
        conn.execute("UPDATE store_info SET value = 'older' WHERE key = 'definitions'")
    with Store(path) as reopened:
        rows = reopened._conn().execute("SELECT count(*) FROM idx_reference WHERE param = 'patient'")
        assert rows.fetchone()[0] == 0
        assert _ids(reopened.search("Observation", "patient=p1")) == ["Observation/o1"]
