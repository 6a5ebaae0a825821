"""Gold facts for the five demo patients agree with the records, and hold the blueprint's key facts."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import DEMO_IDS, GOLD


def _gold(pid: str) -> dict:
    return json.loads((GOLD / f"{pid}.json").read_text(encoding="utf-8"))


def _ref(src: dict) -> str:
    return f"{src['resource_type']}/{src['id']}"


def _patient_of(r: dict) -> str | None:
    for k in ("subject", "patient"):
        if k in r:
            return r[k]["reference"].split("/")[1]
    return r["id"] if r["resourceType"] == "Patient" else None


@pytest.mark.parametrize("pid", DEMO_IDS)
def test_every_gold_source_exists_and_belongs_to_the_patient(pid: str, by_ref) -> None:
    gold = _gold(pid)
    sources = [gold["demographics"]["source"], gold["last_letter"]["source"]]
    for key in (
        "problem_list",
        "medications",
        "allergies",
        "recent_labs",
        "vital_signs",
        "recent_imaging",
        "recent_encounters",
    ):
        for fact in gold[key]:
            sources.append(fact["source"])
            if fact.get("previous_source"):
                sources.append(fact["previous_source"])
    for src in sources:
        assert _ref(src) in by_ref, src
        assert _patient_of(by_ref[_ref(src)]) == pid


@pytest.mark.parametrize("pid", DEMO_IDS)
def test_gold_is_complete_and_exact(pid: str, demo_bundles) -> None:
    """Recall and precision of the gold lists against the raw record, by the documented rules."""
    gold = _gold(pid)
    record = demo_bundles[pid]

    def ids(key: str) -> set[str]:
        return {f["source"]["id"] for f in gold[key]}

    active_conditions = {
        r["id"]
        for r in record
        if r["resourceType"] == "Condition" and r["clinicalStatus"]["coding"][0]["code"] == "active"
    }
    active_meds = {
        r["id"] for r in record if r["resourceType"] == "MedicationRequest" and r["status"] == "active"
    }
    allergies = {r["id"] for r in record if r["resourceType"] == "AllergyIntolerance"}
    imaging = {
        r["id"]
        for r in record
        if r["resourceType"] == "DiagnosticReport" and r["category"][0]["coding"][0]["code"] != "LAB"
    }
    encounters = {r["id"] for r in record if r["resourceType"] == "Encounter"}
    assert ids("problem_list") == active_conditions
    assert ids("medications") == active_meds
    assert ids("allergies") == allergies
    assert ids("recent_imaging") == imaging
    assert ids("recent_encounters") == encounters
    excluded = {e["source"]["id"] for e in gold["excluded"]}
    assert not excluded & (active_conditions | active_meds)
    not_current = {
        r["id"]
        for r in record
        if (r["resourceType"] == "MedicationRequest" and r["status"] != "active")
        or (r["resourceType"] == "Condition" and r["clinicalStatus"]["coding"][0]["code"] != "active")
    }
    assert excluded == not_current
    # latest lab per code: no newer result of the same code exists
    obs = [r for r in record if r["resourceType"] == "Observation"]
    for lab in gold["recent_labs"]:
        same = [o for o in obs if o["code"]["coding"][0]["code"] == lab["code"]]
        newest = max(same, key=lambda o: o["effectiveDateTime"])
        assert newest["id"] == lab["source"]["id"]
    codes = {
        o["code"]["coding"][0]["code"] for o in obs if o["category"][0]["coding"][0]["code"] != "vital-signs"
    }
    assert {lab["code"] for lab in gold["recent_labs"]} == codes


@pytest.mark.parametrize("pid", DEMO_IDS)
def test_last_letter(pid: str, by_ref) -> None:
    gold = _gold(pid)
    doc = by_ref[_ref(gold["last_letter"]["source"])]
    att = doc["content"][0]["attachment"]
    assert att["contentType"].startswith("text/plain")
    text = base64.b64decode(att["data"]).decode("utf-8")
    for phrase in gold["last_letter"]["must_mention"]:
        assert phrase in text, phrase
    assert gold["demographics"]["nhs_number"][:3] in text.replace(" ", "")[:2000]


def _lab(pid: str, name: str) -> dict:
    return next(x for x in _gold(pid)["recent_labs"] if x["name"] == name)


def _med(pid: str, start: str) -> dict:
    return next(x for x in _gold(pid)["medications"] if x["name"].startswith(start))


def test_blueprint_key_facts() -> None:
    """Clarke blueprint §8b, fact by fact."""
    a1c = _lab("pt-001", "HbA1c")
    assert (a1c["value"], a1c["unit"], a1c["previous_value"], a1c["trend"]) == (
        "55",
        "mmol/mol",
        "48",
        "rising",
    )
    egfr = _lab("pt-001", "eGFR")
    assert (egfr["value"], egfr["trend"]) == ("52", "falling")
    assert [a["substance"] for a in _gold("pt-001")["allergies"]] == ["Penicillin"]
    met = _med("pt-001", "Metformin")
    assert (met["dose"], met["frequency"]) == ("1 g", "twice daily")

    ok = _gold("pt-002")
    assert any("unobstructed coronary arteries" in i["summary"] for i in ok["recent_imaging"])
    assert _lab("pt-002", "High-sensitivity troponin T")["value"] == "7"  # < 14 ng/L: negative
    bp = next(v for v in ok["vital_signs"] if v["name"] == "Blood pressure")
    assert (bp["value"], bp["unit"]) == ("148/92", "mmHg")

    pef = _lab("pt-003", "Peak expiratory flow")
    assert pef["value"] == "320" and "450" in pef["reference_range"]
    meds3 = {m["name"] for m in _gold("pt-003")["medications"]}
    assert any(m.startswith("Salbutamol") for m in meds3)
    assert not any("Clenil" in m or "beclometasone" in m.lower() for m in meds3)  # no preventer

    assert _lab("pt-004", "LV ejection fraction")["value"] == "35"
    assert _lab("pt-004", "BNP")["value"] == "450"
    names4 = " ".join(m["name"] for m in _gold("pt-004")["medications"])
    assert all(d in names4 for d in ("Bisoprolol", "Ramipril", "Furosemide"))

    assert _lab("pt-005", "PHQ-9 score")["value"] == "12"
    sert = _med("pt-005", "Sertraline")
    assert sert["dose"] == "100 mg"


def test_demographics_and_ages() -> None:
    expected = {
        "pt-001": ("Mrs Margaret Thompson", "female"),
        "pt-002": ("Mr Emeka Okafor", "male"),
        "pt-003": ("Ms Priya Patel", "female"),
        "pt-004": ("Mr David Williams", "male"),
        "pt-005": ("Mrs Fatima Khan", "female"),
    }
    for pid, (name, sex) in expected.items():
        d = _gold(pid)["demographics"]
        assert (d["name"], d["sex"]) == (name, sex)
        assert d["gp_name"].startswith("Dr ") and d["gp_practice"]


@pytest.mark.parametrize("pid", DEMO_IDS)
def test_frequency_labels_follow_the_structured_timing(pid: str, by_ref) -> None:
    """The gold frequency says what timing.repeat says: count per day, morning/night, when required."""
    words = {1: "once daily", 2: "twice daily", 4: "four times daily"}
    for med in _gold(pid)["medications"]:
        dosage = by_ref[_ref(med["source"])]["dosageInstruction"][0]
        repeat = dosage.get("timing", {}).get("repeat")
        freq = med["frequency"]
        if dosage["asNeededBoolean"]:
            assert "when required" in freq
        if repeat and not dosage["asNeededBoolean"]:
            assert freq.startswith(words[repeat["frequency"]]), (med["name"], freq)
            when = repeat.get("when", [])
            assert ("MORN" in when) == freq.endswith("in the morning"), (med["name"], freq)
            assert ("HS" in when) == freq.endswith("at night"), (med["name"], freq)
