"""The five hand-written demo patients (Clarke blueprint §8b), the clinician and the hospital.

The records are data, in scripts/demo_data/, written as UK-style FHIR R4 exactly as they go into
the bundles (NHS number, GP and practice, SNOMED problems, BNF medication names with structured
doses, LOINC results in UK units with reference ranges and an earlier value so trends exist,
imaging reports with conclusions, encounters and the previous clinic letter):

  organisations.json    the hospital and the GP practices (keyed riverside, elmwood, parkside)
  clinicians.json       the clinic's consultant and their role, the GPs (keyed by practice) and
                        the hospital colleagues who wrote earlier letters and reports
  pt-00N-<name>.json    one patient: "resources" (Patient first, in bundle order),
                        "letter_must_mention" (phrases the previous letter contains) and
                        "gold_wording" (below)
  letters/*.txt         the previous clinic letters; "{nhs}" stands for the patient's NHS number

This module adds only what follows from that data. A DocumentReference attachment's "data" names
its letter file and becomes the letter's text in base64. The gold facts a correct PatientContext
must contain (tests/data/gold_facts/pt-00N.json) are derived from the resources; "gold_wording"
holds, per MedicationRequest id, the wording a resource cannot carry: "frequency" where the timing
is structured (a timing.code.text is used as written) and "dose" where it is not "<value> <unit>".

Dates are fixed (not relative to "today") so the gold facts stay exact; the latest results sit
in October/November 2026.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from dataset_common import NHS_NUMBER_SYSTEM, age_on, b64, format_nhs_number

DATA_DIR = Path(__file__).resolve().parent / "demo_data"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


_ORGANISATIONS = _load(DATA_DIR / "organisations.json")
_CLINICIANS = _load(DATA_DIR / "clinicians.json")

HOSPITAL: dict = _ORGANISATIONS["hospital"]
GP_PRACTICES: dict[str, dict] = _ORGANISATIONS["gp_practices"]
GPS: dict[str, dict] = _CLINICIANS["gps"]
CLINICIAN: dict = _CLINICIANS["clinician"]
CLINICIAN_ROLE: dict = _CLINICIANS["clinician_role"]
COLLEAGUES: dict[str, dict] = _CLINICIANS["colleagues"]
HOSPITAL_ID: str = HOSPITAL["id"]
CLINICIAN_ID: str = CLINICIAN["id"]
CLINICIAN_ROLE_ID: str = CLINICIAN_ROLE["id"]
DATASET_TAG: dict = HOSPITAL["meta"]["tag"][0]  # every demo resource carries it


def patient_files() -> list[Path]:
    return sorted(DATA_DIR.glob("pt-*.json"))


def _patient(resources: list[dict]) -> dict:
    return next(r for r in resources if r["resourceType"] == "Patient")


def _nhs_number(patient: dict) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)


LETTER_MUST_MENTION: dict[str, list[str]] = {
    _patient(data["resources"])["id"]: data["letter_must_mention"]
    for data in (_load(p) for p in patient_files())
}


def build_demo() -> tuple[list[dict], dict[str, list[dict]], dict[str, dict]]:
    """Returns (shared resources, {patient id: resources}, {patient id: gold facts})."""
    shared = [
        HOSPITAL,
        CLINICIAN,
        CLINICIAN_ROLE,
        *GP_PRACTICES.values(),
        *GPS.values(),
        *COLLEAGUES.values(),
    ]
    staff = {f"{r['resourceType']}/{r['id']}": r for r in shared}
    per_patient: dict[str, list[dict]] = {}
    gold: dict[str, dict] = {}
    for path in patient_files():
        data = _load(path)
        resources: list[dict] = data["resources"]
        patient = _patient(resources)
        nhs = format_nhs_number(_nhs_number(patient))
        for r in resources:
            if r["resourceType"] == "DocumentReference":
                for content in r["content"]:
                    att = content["attachment"]
                    att["data"] = b64(
                        (DATA_DIR / att["data"]).read_text(encoding="utf-8").replace("{nhs}", nhs)
                    )
        per_patient[patient["id"]] = resources
        gold[patient["id"]] = _gold(patient, resources, staff, data)
    return shared, per_patient, gold


def demo_ages(on: date) -> dict[str, int]:
    patients = (_patient(_load(p)["resources"]) for p in patient_files())
    return {p["id"]: age_on(date.fromisoformat(p["birthDate"]), on) for p in patients}


# --- Gold facts ----------------------------------------------------------------------------------

GOLD_ORDER = [
    "problem_list",
    "medications",
    "allergies",
    "recent_labs",
    "vital_signs",
    "recent_imaging",
    "recent_encounters",
    "last_letter",
    "excluded",
]
GOLD_RULES = {
    "problem_list": "every Condition with clinicalStatus active (resolved/inactive ones are in `excluded`)",
    "medications": "every MedicationRequest with status active; dose and frequency as prescribed",
    "allergies": "every active AllergyIntolerance, including a recorded 'no known drug allergy'",
    "recent_labs": "latest Observation per LOINC code (all categories but vital-signs), with the "
    "one before it as previous_value/previous_date; trend compares the two",
    "vital_signs": "latest vital-sign Observation per code, with the one before it",
    "recent_imaging": "every non-laboratory DiagnosticReport with its conclusion",
    "recent_encounters": "every Encounter, newest first",
    "last_letter": "the newest DocumentReference; must_mention: phrases its text contains",
    "excluded": "resources a correct context must NOT present as current (stopped, resolved)",
}


def _gold(patient: dict, resources: list[dict], staff: dict[str, dict], data: dict) -> dict:
    """What a correct PatientContext holds, read off the resources in their order."""
    facts: dict[str, Any] = {k: [] for k in GOLD_ORDER if k != "last_letter"}
    labs: dict[str, list[dict]] = {}
    vitals: dict[str, list[dict]] = {}
    for r in resources:
        kind, src = r["resourceType"], _source(r)
        if kind == "Encounter":
            enc = {"date": r["period"]["start"][:10], "type": r["type"][0]["coding"][0]["display"]}
            facts["recent_encounters"].append(enc | {"reason": r["reasonCode"][0]["text"], "source": src})
        elif kind == "Condition":
            status, name = r["clinicalStatus"]["coding"][0]["code"], r["code"]["text"]
            if status == "active":
                code, onset = r["code"]["coding"][0]["code"], r["onsetDateTime"]
                facts["problem_list"].append(
                    {"name": name, "code": code, "onset": onset, "status": status, "source": src}
                )
            else:
                facts["excluded"].append({"source": src, "why": f"condition {status}: {name}"})
        elif kind == "MedicationRequest":
            _medication(r, data["gold_wording"].get(r["id"], {}), facts)
        elif kind == "AllergyIntolerance":
            reaction = r.get("reaction", [{}])[0]
            facts["allergies"].append(
                {
                    "substance": r["code"]["text"],
                    "reaction": reaction["manifestation"][0]["coding"][0]["display"] if reaction else None,
                    "severity": reaction.get("severity"),
                    "criticality": r.get("criticality"),
                    "source": src,
                }
            )
        elif kind == "Observation":
            vital = r["category"][0]["coding"][0]["code"] == "vital-signs"
            (vitals if vital else labs).setdefault(r["code"]["coding"][0]["code"], []).append(r)
        elif kind == "DiagnosticReport" and r["category"][0]["coding"][0]["code"] != "LAB":
            when, summary = r["effectiveDateTime"][:10], r["conclusion"]
            facts["recent_imaging"].append(
                {"type": r["code"]["text"], "date": when, "summary": summary, "source": src}
            )
        elif kind == "DocumentReference":
            facts["last_letter"] = {"date": r["date"][:10], "title": r["description"], "source": src}
    facts["recent_labs"] = [_lab_fact(sorted(v, key=_when)) for v in labs.values()]
    facts["recent_labs"].sort(key=lambda f: (f["date"], f["name"]), reverse=True)
    facts["vital_signs"] = [_lab_fact(sorted(v, key=_when)) for v in vitals.values()]
    facts["recent_encounters"].sort(key=lambda e: e["date"], reverse=True)
    facts["recent_imaging"].sort(key=lambda e: e["date"], reverse=True)
    facts["last_letter"]["must_mention"] = data["letter_must_mention"]
    gp, practice = (staff[g["reference"]] for g in patient["generalPractitioner"])
    demographics = {
        "name": person_name(patient),
        "date_of_birth": patient["birthDate"],
        "nhs_number": _nhs_number(patient),
        "sex": patient["gender"],
        "gp_name": person_name(gp),
        "gp_practice": practice["name"],
        "source": _source(patient),
    }
    return {
        "patient_id": patient["id"],
        "rules": GOLD_RULES,
        "demographics": demographics,
        **{k: facts[k] for k in GOLD_ORDER},
    }


def _medication(r: dict, wording: dict[str, str], facts: dict[str, Any]) -> None:
    dosage = r["dosageInstruction"][0]
    quantity = dosage["doseAndRate"][0]["doseQuantity"]
    name, status = r["medicationCodeableConcept"]["text"], r["status"]
    dose = wording.get("dose") or f"{_num(quantity['value'])} {quantity['unit']}"
    if status != "active":
        facts["excluded"].append({"source": _source(r), "why": f"medication {status}: {name} {dose}"})
        return
    frequency = wording.get("frequency") or dosage["timing"].get("code", {}).get("text")
    if not frequency:
        raise ValueError(f"{r['id']}: a structured timing needs its frequency in gold_wording")
    facts["medications"].append(
        {
            "name": name,
            "dose": dose,
            "frequency": frequency,
            "route": dosage["route"]["text"],
            "dosage_text": dosage["text"],
            "status": status,
            "source": _source(r),
        }
    )


def person_name(p: dict) -> str:
    n = p["name"][0]
    return " ".join([*n.get("prefix", []), *n.get("given", []), n["family"]])


def _source(r: dict) -> dict[str, str]:
    return {"resource_type": r["resourceType"], "id": r["id"]}


def _when(r: dict) -> str:
    return r["effectiveDateTime"]


def _num(v: float | None) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() else str(v)


def _value_text(r: dict) -> tuple[str, str]:
    if "component" in r:
        s, d = (c["valueQuantity"] for c in r["component"])
        return f"{_num(s['value'])}/{_num(d['value'])}", s["unit"]
    vq = r["valueQuantity"]
    return vq.get("comparator", "") + _num(vq["value"]), vq["unit"]


def _scalar(r: dict) -> float:
    if "component" in r:
        return float(r["component"][0]["valueQuantity"]["value"])
    return float(r["valueQuantity"]["value"])


def _lab_fact(series: list[dict]) -> dict:
    latest = series[-1]
    value, unit = _value_text(latest)
    fact: dict[str, Any] = {
        "name": latest["code"]["text"],
        "code": latest["code"]["coding"][0]["code"],
        "value": value,
        "unit": unit,
        "date": latest["effectiveDateTime"][:10],
        "reference_range": latest.get("referenceRange", [{}])[0].get("text"),
        "previous_value": None,
        "previous_date": None,
        "trend": None,
        "source": _source(latest),
        "previous_source": None,
    }
    if len(series) > 1:
        prev = series[-2]
        fact["previous_value"] = _value_text(prev)[0]
        fact["previous_date"] = prev["effectiveDateTime"][:10]
        fact["previous_source"] = _source(prev)
        a, b = _scalar(prev), _scalar(latest)
        fact["trend"] = "rising" if b > a else "falling" if b < a else "stable"
    return fact
