"""Shared helpers for building the bundled clinic dataset (used by scripts/build_dataset.py).

Developer-side only: the app never imports this module. It reads nothing outside the repo.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
FHIR_DIR = RESOURCES / "fhir"
CLINIC_DIR = RESOURCES / "clinic"
DEMO_DIR = RESOURCES / "demo"
GOLD_DIR = REPO / "tests" / "data" / "gold_facts"

LONDON = ZoneInfo("Europe/London")

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
HOSPITAL_NUMBER_SYSTEM = "https://fhir.northbridge-hospital.example.nhs.uk/Id/hospital-number"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11 check digit of an NHS number (None: that stem has no valid number)."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(value: str) -> bool:
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def make_nhs_number(serial: int) -> str:
    """A valid NHS number in the 999 range NHS England reserves for test data (never issued)."""
    n = serial
    while True:
        stem = f"999{n % 1_000_000:06d}"
        check = nhs_check_digit(stem)
        if check is not None:
            return stem + str(check)
        n += 1


def format_nhs_number(value: str) -> str:
    d = value.replace(" ", "")
    return f"{d[:3]} {d[3:6]} {d[6:]}"


def london_dt(d: str, hhmm: str = "09:00") -> str:
    """ISO dateTime for a wall-clock time in London, with the right GMT/BST offset."""
    y, m, dd = (int(x) for x in d.split("-"))
    hh, mm = (int(x) for x in hhmm.split(":"))
    dt = datetime(y, m, dd, hh, mm, tzinfo=LONDON)
    return dt.isoformat(timespec="seconds")


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)], "text": text or display}


def qty(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def validate_resource(resource: dict[str, Any]) -> None:
    """Raise ValueError naming the resource if fhir.resources.R4B rejects it."""
    from fhir.resources.R4B import get_fhir_model_class

    cls = get_fhir_model_class(resource["resourceType"])
    try:
        cls.model_validate(resource)
    except Exception as exc:  # pydantic ValidationError; re-raise with the resource named
        raise ValueError(f"{resource['resourceType']}/{resource.get('id')} is not valid R4: {exc}") from exc


def validate_all(resources: Iterable[dict[str, Any]]) -> int:
    n = 0
    for r in resources:
        validate_resource(r)
        n += 1
    return n


def transaction_bundle(resources: list[dict[str, Any]], bundle_id: str) -> dict[str, Any]:
    """A transaction of PUTs with explicit ids, so re-importing is an idempotent update."""
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def utc_now() -> datetime:
    return datetime.now(UTC)
