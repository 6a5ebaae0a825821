"""Small FHIR resource builders for the local_fhir tests."""

from __future__ import annotations

from typing import Any


def patient(pid: str, family: str, given: str = "Ann", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": [given]}], **extra}


def observation(oid: str, subject: str, code: str, when: Any = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": f"Test {code}"}]},
        "subject": {"reference": subject},
    }
    if isinstance(when, str):
        res["effectiveDateTime"] = when
    elif isinstance(when, dict):
        res["effectivePeriod"] = when
    res.update(extra)
    return res


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]
