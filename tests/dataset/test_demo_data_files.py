"""The demo patients are data (scripts/demo_data/); dataset_demo.py only fills in letters and gold facts."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO_IDS, SCRIPTS
from dataset_demo import GP_PRACTICES, GPS, LETTER_MUST_MENTION, build_demo

DATA = SCRIPTS / "demo_data"


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _patient_files() -> dict[str, dict[str, Any]]:
    """Patient id -> the file's content, as written."""
    out = {}
    for path in sorted(DATA.glob("pt-*.json")):
        data = _read(path)
        (patient,) = [r for r in data["resources"] if r["resourceType"] == "Patient"]
        assert path.name.startswith(patient["id"] + "-"), path.name
        out[patient["id"]] = data
    return out


def _shared_files() -> list[dict[str, Any]]:
    orgs, staff = _read(DATA / "organisations.json"), _read(DATA / "clinicians.json")
    return [
        orgs["hospital"],
        staff["clinician"],
        staff["clinician_role"],
        *orgs["gp_practices"].values(),
        *staff["gps"].values(),
        *staff["colleagues"].values(),
    ]


@pytest.fixture(scope="module")
def built() -> tuple[list[dict], dict[str, list[dict]], dict[str, dict]]:
    return build_demo()


def test_every_demo_patient_has_a_file(built) -> None:
    assert list(_patient_files()) == DEMO_IDS
    assert list(built[1]) == DEMO_IDS == list(built[2]) == list(LETTER_MUST_MENTION)


def test_the_builder_returns_the_files_resources_unchanged_but_the_letters(built) -> None:
    shared, per_patient, _ = built
    assert shared == _shared_files()
    for pid, data in _patient_files().items():
        expected = copy.deepcopy(data["resources"])
        nhs = next(p for p in expected if p["resourceType"] == "Patient")["identifier"][0]["value"]
        letters = 0
        for r in expected:
            if r["resourceType"] == "DocumentReference":
                att = r["content"][0]["attachment"]
                text = (DATA / att["data"]).read_text(encoding="utf-8")
                assert "{nhs}" in text, att["data"]
                att["data"] = base64.b64encode(
                    text.replace("{nhs}", f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}").encode("utf-8")
                ).decode("ascii")
                letters += 1
        assert letters == 1, pid
        assert per_patient[pid] == expected, pid
        assert LETTER_MUST_MENTION[pid] == data["letter_must_mention"]


def test_each_letter_mentions_its_must_mention_phrases(built) -> None:
    for pid, resources in built[1].items():
        (doc,) = [r for r in resources if r["resourceType"] == "DocumentReference"]
        text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8")
        assert "{nhs}" not in text
        for phrase in built[2][pid]["last_letter"]["must_mention"]:
            assert phrase in text, (pid, phrase)


def test_every_resource_is_identified_and_tagged(built) -> None:
    shared, per_patient, _ = built
    everything = [*shared, *(r for rs in per_patient.values() for r in rs)]
    keys = [f"{r.get('resourceType')}/{r.get('id')}" for r in everything]
    for r in everything:
        assert isinstance(r.get("resourceType"), str) and r["resourceType"][:1].isupper(), r
        assert isinstance(r.get("id"), str) and r["id"], r
        assert r["meta"]["tag"] == [{"system": "https://clarke.example/fhir/tags", "code": "clarke-demo"}], r[
            "id"
        ]
    assert len(keys) == len(set(keys)), "duplicate resource ids"
    for pid, resources in per_patient.items():
        assert resources[0]["resourceType"] == "Patient" and resources[0]["id"] == pid
        assert all(r["id"] == pid or pid in r["id"] for r in resources), pid


def test_every_reference_resolves_within_the_demo_data(built) -> None:
    shared, per_patient, _ = built
    known = {
        f"{r['resourceType']}/{r['id']}": r
        for r in [*shared, *(r for rs in per_patient.values() for r in rs)]
    }
    refs: list[tuple[str, str, dict]] = []

    def walk(node: object, owner: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                refs.append((owner, node["reference"], node))
            for v in node.values():
                walk(v, owner)
        elif isinstance(node, list):
            for v in node:
                walk(v, owner)

    for key, r in known.items():
        walk(r, key)
    assert len(refs) > 100  # the walk found the references
    for owner, ref, node in refs:
        assert ref in known, f"{owner} -> {ref} resolves to nothing in the demo data"
        target = known[ref]
        if "display" in node and target["resourceType"] in ("Organization", "Patient", "Practitioner"):
            name = target.get("name")
            if isinstance(name, list):
                n = name[0]
                name = " ".join([*n.get("prefix", []), *n.get("given", []), n["family"]])
            assert node["display"] == name, f"{owner} -> {ref}: display {node['display']!r}"
    # a patient's record refers to that patient only
    owner_pid = {f"{r['resourceType']}/{r['id']}": pid for pid, rs in per_patient.items() for r in rs}
    for owner, ref, _ in refs:
        if ref.startswith("Patient/"):
            assert ref == f"Patient/{owner_pid[owner]}", (owner, ref)


def test_patients_gps_and_practices_match(built) -> None:
    for pid, resources in built[1].items():
        gp_ref, practice_ref = (g["reference"] for g in resources[0]["generalPractitioner"])
        keys = [k for k, gp in GPS.items() if f"Practitioner/{gp['id']}" == gp_ref]
        assert len(keys) == 1, pid
        assert practice_ref == f"Organization/{GP_PRACTICES[keys[0]]['id']}", pid


def test_letter_files_are_all_used() -> None:
    named = {
        r["content"][0]["attachment"]["data"]
        for data in _patient_files().values()
        for r in data["resources"]
        if r["resourceType"] == "DocumentReference"
    }
    on_disk = {f"letters/{p.name}" for p in (DATA / "letters").glob("*.txt")}
    assert named == on_disk


def test_gold_wording_names_medications_that_exist() -> None:
    for pid, data in _patient_files().items():
        meds = {r["id"] for r in data["resources"] if r["resourceType"] == "MedicationRequest"}
        assert set(data["gold_wording"]) <= meds, pid
        for words in data["gold_wording"].values():
            assert set(words) <= {"frequency", "dose"}, pid


def test_the_committed_gold_facts_are_the_builders(built) -> None:
    gold_dir = SCRIPTS.parent / "tests" / "data" / "gold_facts"
    for pid, facts in built[2].items():
        committed = (gold_dir / f"{pid}.json").read_text(encoding="utf-8")
        assert committed == json.dumps(facts, indent=2, ensure_ascii=False) + "\n", pid
