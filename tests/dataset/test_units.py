"""US conventional -> SI conversions: known values, and the bundled data against the source."""

from __future__ import annotations

import json

import pytest
from dataset_units import RULES, convert_observation, hba1c_percent_to_mmol_mol

LOINC = "http://loinc.org"


def _obs(code: str, value: float, unit: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": "x"}]},
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


@pytest.mark.parametrize(
    ("code", "us_value", "us_unit", "uk_code", "uk_value", "uk_unit"),
    [
        ("2339-0", 100, "mg/dL", "15074-8", 5.6, "mmol/L"),  # glucose 100 mg/dL = 5.55 mmol/L
        ("2339-0", 126, "mg/dL", "15074-8", 7.0, "mmol/L"),  # the diabetes fasting threshold
        ("4548-4", 6.5, "%", "59261-8", 48, "mmol/mol"),  # diagnostic HbA1c: 6.5 % = 48 mmol/mol
        ("4548-4", 7.0, "%", "59261-8", 53, "mmol/mol"),
        ("4548-4", 5.7, "%", "59261-8", 39, "mmol/mol"),  # prediabetes threshold 5.7 % = 39
        ("38483-4", 1.0, "mg/dL", "59826-8", 88, "µmol/L"),
        ("38483-4", 1.2, "mg/dL", "59826-8", 106, "µmol/L"),
        ("2093-3", 200, "mg/dL", "14647-2", 5.2, "mmol/L"),
        ("2085-9", 40, "mg/dL", "14646-4", 1.0, "mmol/L"),
        ("18262-6", 116, "mg/dL", "22748-8", 3.0, "mmol/L"),
        ("2571-8", 150, "mg/dL", "14927-8", 1.7, "mmol/L"),
        ("6299-2", 14, "mg/dL", "22664-7", 5.0, "mmol/L"),  # BUN 14 mg/dL = urea 5.0 mmol/L
        ("49765-1", 10.0, "mg/dL", "2000-8", 2.5, "mmol/L"),
        ("1975-2", 1.0, "mg/dL", "14631-6", 17, "µmol/L"),
        ("718-7", 13.5, "g/dL", "718-7", 135, "g/L"),
        ("4544-3", 42.0, "%", "4544-3", 0.42, "L/L"),
        # Synthea's own unit slips: protein values are g/L already, globulin values are g/dL
        ("2885-2", 66.1, "g/dL", "2885-2", 66, "g/L"),
        ("10834-0", 2.9, "g/L", "10834-0", 29, "g/L"),
    ],
)
def test_known_values(code, us_value, us_unit, uk_code, uk_value, uk_unit) -> None:
    obs = _obs(code, us_value, us_unit)
    assert convert_observation(obs, "male")
    vq = obs["valueQuantity"]
    assert obs["code"]["coding"][0]["code"] == uk_code
    assert vq["value"] == pytest.approx(uk_value)
    assert vq["unit"] == uk_unit
    assert obs["referenceRange"][0]["text"].endswith(uk_unit)


def test_rounding_only_keeps_the_code() -> None:
    obs = _obs("29463-7", 87.117503126884, "kg")
    obs["code"]["text"] = "Body Weight"
    assert convert_observation(obs, None)
    assert obs["valueQuantity"]["value"] == 87.1 and obs["code"]["text"] == "Body Weight"
    assert "referenceRange" not in obs


def test_master_equation() -> None:
    assert hba1c_percent_to_mmol_mol(2.15) == 0
    assert hba1c_percent_to_mmol_mol(10.0) == pytest.approx(85.8, abs=0.1)


def test_unknown_codes_and_units_untouched() -> None:
    obs = _obs("8867-4", 72.4, "/min")  # heart rate: no rule
    assert not convert_observation(obs, None)
    assert obs["valueQuantity"] == {
        "value": 72.4,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }


def test_sex_specific_reference_ranges() -> None:
    male, female = _obs("38483-4", 1.0, "mg/dL"), _obs("38483-4", 1.0, "mg/dL")
    convert_observation(male, "male")
    convert_observation(female, "female")
    assert male["referenceRange"][0]["high"]["value"] == 104
    assert female["referenceRange"][0]["high"]["value"] == 84


def test_no_us_units_left(population) -> None:
    us_units = {"mg/dL", "g/dL", "10*3/uL", "10*6/uL", "pg/mL", "ng/mL"}
    left = []
    for r in population:
        if r["resourceType"] != "Observation":
            continue
        for q in [r.get("valueQuantity"), *(c.get("valueQuantity") for c in r.get("component", []))]:
            if q and q.get("unit") in us_units:
                left.append((r["id"], q["unit"]))
        if r["code"]["coding"][0]["code"] == "59261-8":
            assert r["valueQuantity"]["unit"] == "mmol/mol"
    assert left == []


def test_bundled_values_match_the_source(population, shared_dir) -> None:
    """Each converted result equals the conversion of the Synthea value with the same id."""
    src = shared_dir / "data" / "synthea-r4"
    original = {}
    for f in sorted(src.glob("*.json")):
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Observation" and "valueQuantity" in r:
                original[r["id"]] = r
    checked = 0
    for r in population:
        if r["resourceType"] != "Observation" or r["id"] not in original:
            continue
        before = original[r["id"]]
        rule = RULES.get(before["code"]["coding"][0]["code"])
        if rule is None:
            assert r["valueQuantity"]["value"] == before["valueQuantity"]["value"]
            continue
        expected = rule.convert(float(before["valueQuantity"]["value"]))
        assert r["valueQuantity"]["value"] == pytest.approx(expected, abs=0.5 * 10**-rule.dp + 1e-9), r["id"]
        assert r["code"]["coding"][0]["code"] == rule.code
        checked += 1
    assert checked > 1500  # glucose, lipids, renal, FBC, LFTs ... across 50 patients
