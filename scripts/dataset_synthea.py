"""Localise the shared Synthea R4 sample (US) to UK conventions, deterministically.

What changes, and why:
- US billing resources (Claim, ExplanationOfBenefit) are dropped: the NHS has no claims.
- urn:uuid references become `Type/id` (ids are Synthea's UUIDs), duplicates across bundles merged.
- Every date moves forward by SHIFT_DAYS so the records end in early 2026, like the demo patients.
- Patients: UK names (matching gender and preferred language), UK addresses and Ofcom drama phone
  numbers, a valid NHS number (999 test range), a hospital number; SSN, driver's licence,
  passport, US Core race/ethnicity, birthplace, mother's maiden name and the geolocation extension
  are removed; the GP is the provider the patient saw most for ambulatory care.
- Organizations and Practitioners: fictional UK hospitals/practices (ODS-style codes) and doctors
  (GMC-style numbers) replace US providers, NPI numbers and addresses.
- Laboratory results: SI units with the right LOINC code and UK reference ranges (dataset_units).
- Medicines: BNF-style names (dataset_uk.BNF_NAMES) replace RxNorm (a US terminology).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dataset_common import (
    GMC_SYSTEM,
    HOSPITAL_NUMBER_SYSTEM,
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    concept,
    make_nhs_number,
)
from dataset_uk import (
    AREAS,
    BNF_NAMES,
    FAMILY,
    FEMALE_GIVEN,
    FEMININE_FAMILY,
    MALE_GIVEN,
    PLACES,
    POPULATION_PRACTICES,
    POSTCODE_LETTERS,
    STREETS,
    london_phone,
    mobile_phone,
)
from dataset_units import convert_observation

SHIFT_DAYS = 1826  # five years: the newest Synthea record (2021-03-29) lands on 2026-03-29
DROP_TYPES = {"Claim", "ExplanationOfBenefit"}
SYNTHEA_TAG = {"system": "https://clarke.example/fhir/tags", "code": "clarke-synthea-uk"}
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$")
SKIP_KEYS = {"id", "reference", "url", "system", "code", "div", "value", "data"}


def _rng(*parts: str) -> random.Random:
    seed = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return random.Random(int(seed[:16], 16))


def shift_date(s: str) -> str:
    m = DATE_RE.match(s)
    if not m:
        return s
    if m.group(4):
        fraction = m.group(5) or ""
        dt = datetime.fromisoformat(s.replace(fraction, "").replace("Z", "+00:00")) + timedelta(
            days=SHIFT_DAYS
        )
        head, tz = dt.isoformat(timespec="seconds")[:19], m.group(6)
        return head + fraction + tz  # keep the original precision and offset text
    return (date.fromisoformat(s) + timedelta(days=SHIFT_DAYS)).isoformat()


def _walk(node: Any, fn, key: str | None = None) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, fn, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, fn, key) for v in node]
    if isinstance(node, str):
        return fn(node, key)
    return node


def load_synthea(src: Path) -> list[dict[str, Any]]:
    """All resources of all bundles, references resolved, deduplicated by (type, id)."""
    files = sorted(src.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no Synthea bundles (*.json) in {src}")
    seen: dict[tuple[str, str], dict] = {}
    for f in files:
        bundle = json.loads(f.read_text(encoding="utf-8"))
        urls = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
        }

        def resolve(s: str, key: str | None, urls: dict[str, str] = urls) -> str:
            return urls.get(s, s) if key == "reference" else s

        for e in bundle["entry"]:
            r = e["resource"]
            if r["resourceType"] in DROP_TYPES:
                continue
            seen.setdefault((r["resourceType"], r["id"]), _walk(r, resolve))
    return list(seen.values())


def _patient_of(r: dict) -> str | None:
    for k in ("subject", "patient"):
        ref = r.get(k, {}).get("reference", "")
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def _postcode(rng: random.Random) -> tuple[str, str]:
    district, city = rng.choice(AREAS)
    inward = f"{rng.randint(1, 9)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
    return f"{district} {inward}", city


def _uk_address(rng: random.Random, use: str | None = None) -> dict[str, Any]:
    postcode, city = _postcode(rng)
    addr: dict[str, Any] = {
        "line": [f"{rng.randint(1, 180)} {rng.choice(STREETS)}"],
        "city": city,
        "postalCode": postcode,
        "country": "GB",
    }
    if use:
        addr = {"use": use, **addr}
    return addr


def _language(p: dict) -> str:
    for c in p.get("communication", []):
        code = c["language"]["coding"][0]["code"].split("-")[0]
        if code in MALE_GIVEN:
            return code
    return "en"


def _prefix(p: dict) -> list[str]:
    old = [x.rstrip(".") for x in p["name"][0].get("prefix", [])]
    return old  # Synthea gives Mr./Mrs./Ms. by age and marital status; UK style drops the dot


def localise_patient(p: dict, serial: int, gp: tuple[dict, dict] | None) -> dict:
    rng = _rng("patient", p["id"])
    lang = _language(p)
    given_pool = (FEMALE_GIVEN if p.get("gender") == "female" else MALE_GIVEN)[lang]
    family = rng.choice(FAMILY[lang])
    if p.get("gender") == "female":
        family = FEMININE_FAMILY.get(family, family)
    given = [rng.choice(given_pool)]
    name: dict[str, Any] = {"use": "official", "family": family, "given": given}
    if _prefix(p):
        name["prefix"] = _prefix(p)
    out = {k: v for k, v in p.items() if k not in ("extension", "identifier", "name", "telecom", "address")}
    synthea_ids = [
        i for i in p.get("identifier", []) if i.get("system") == "https://github.com/synthetichealth/synthea"
    ]
    out["identifier"] = [
        {"system": NHS_NUMBER_SYSTEM, "value": make_nhs_number(100_000 + serial * 7)},
        {
            "type": concept(
                "http://terminology.hl7.org/CodeSystem/v2-0203",
                "MR",
                "Medical record number",
                "Hospital number",
            ),
            "system": HOSPITAL_NUMBER_SYSTEM,
            "value": f"RNB2{serial:06d}",
        },
        *synthea_ids,
    ]
    out["name"] = [name]
    out["telecom"] = [{"system": "phone", "value": london_phone(rng.randint(0, 999)), "use": "home"}]
    if rng.random() < 0.6:
        out["telecom"].append(
            {"system": "phone", "value": mobile_phone(rng.randint(0, 999)), "use": "mobile"}
        )
    out["address"] = [_uk_address(rng, "home")]
    for c in out.get("communication", []):
        coding = c["language"]["coding"][0]
        if coding["code"] == "en-US":
            c["language"] = concept("urn:ietf:bcp:47", "en-GB", "English (United Kingdom)")
    if gp:
        out["generalPractitioner"] = [
            {"reference": f"Practitioner/{gp[0]['id']}", "display": _pname(gp[0])},
            {"reference": f"Organization/{gp[1]['id']}", "display": gp[1]["name"]},
        ]
    return out


def _pname(p: dict) -> str:
    n = p["name"][0]
    return " ".join([*n.get("prefix", []), *n.get("given", []), n["family"]])


def _provider_kind(name: str) -> str:
    n = name.upper()
    if "URGENT" in n or "WALK-IN" in n or "WALK IN" in n:
        return "Urgent Treatment Centre"
    if "HOSPITAL" in n or "MEDICAL CENTER" in n or "MEDICAL CTR" in n or "INFIRMARY" in n:
        return "Hospital"
    return "Health Centre"


def localise_organization(o: dict, index: int) -> dict:
    """A US provider becomes a fictional south-London one of the same kind."""
    rng = _rng("org", o["id"])
    kind = _provider_kind(o.get("name", ""))
    out = {k: v for k, v in o.items() if k not in ("identifier", "telecom", "address", "name")}
    out["identifier"] = [{"system": ODS_SYSTEM, "value": f"RX{index:03d}"}]
    out["name"] = f"{PLACES[index % len(PLACES)]} {kind}"
    out["telecom"] = [{"system": "phone", "value": london_phone(rng.randint(0, 999)), "use": "work"}]
    out["address"] = [_uk_address(rng)]
    return out


def population_practices() -> list[tuple[dict, dict]]:
    """(GP, practice) pairs that exist only for the Synthea patients."""
    out = []
    for oid, name, ods, street, postcode, given, family, gender, gmc in POPULATION_PRACTICES:
        org = {
            "resourceType": "Organization",
            "id": oid,
            "identifier": [{"system": ODS_SYSTEM, "value": ods}],
            "active": True,
            "type": [
                concept(
                    "http://terminology.hl7.org/CodeSystem/organization-type",
                    "prov",
                    "Healthcare Provider",
                    "GP practice",
                )
            ],
            "name": name,
            "telecom": [{"system": "phone", "value": london_phone(int(gmc) % 1000), "use": "work"}],
            "address": [{"line": [street], "city": "London", "postalCode": postcode, "country": "GB"}],
        }
        gp = {
            "resourceType": "Practitioner",
            "id": "gp-" + oid.removeprefix("org-gp-"),
            "identifier": [{"system": GMC_SYSTEM, "value": gmc}],
            "active": True,
            "name": [{"use": "official", "prefix": ["Dr"], "given": [given], "family": family}],
            "gender": gender,
            "address": org["address"],
            "qualification": [{"code": {"text": "General Practitioner"}}],
        }
        out.append((gp, org))
    return out


def localise_practitioner(pr: dict, org: dict | None) -> dict:
    rng = _rng("practitioner", pr["id"])
    pool = FEMALE_GIVEN if pr.get("gender") == "female" else MALE_GIVEN
    family = rng.choice(FAMILY["en"])
    out = {k: v for k, v in pr.items() if k not in ("identifier", "name", "address", "telecom")}
    out["identifier"] = [{"system": GMC_SYSTEM, "value": str(rng.randint(3_000_000, 7_999_999))}]
    out["name"] = [{"use": "official", "prefix": ["Dr"], "given": [rng.choice(pool["en"])], "family": family}]
    if org:
        out["address"] = org["address"]
    return out


def localise_medication(m: dict) -> dict:
    cc = m.get("medicationCodeableConcept")
    if cc:
        display = cc.get("text") or cc["coding"][0].get("display", "")
        uk = BNF_NAMES.get(display)
        if uk is None:
            raise KeyError(f"no BNF name for Synthea medicine {display!r}: add it to dataset_uk.BNF_NAMES")
        m["medicationCodeableConcept"] = {"text": uk}
    return m


def localise(resources: list[dict[str, Any]], practices: list[tuple[dict, dict]]) -> list[dict[str, Any]]:
    """`practices`: (GP Practitioner, practice Organization) pairs patients can be registered with."""
    # 1. dates first (every dated string, wherever it is)
    resources = [_walk(r, lambda s, k: s if k in SKIP_KEYS else shift_date(s)) for r in resources]
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in resources:
        by_type[r["resourceType"]].append(r)

    # 2. providers: each US organisation and clinician becomes a fictional UK one
    enc_practitioner: dict[str, str] = {}
    for e in by_type["Encounter"]:
        org = e.get("serviceProvider", {}).get("reference", "").split("/")[-1]
        for part in e.get("participant", []):
            ref = part.get("individual", {}).get("reference", "")
            if ref.startswith("Practitioner/"):
                enc_practitioner.setdefault(ref.split("/")[1], org)
    orgs = sorted(by_type["Organization"], key=lambda o: o["id"])
    new_orgs = {o["id"]: localise_organization(o, i) for i, o in enumerate(orgs)}
    new_pracs = {
        p["id"]: localise_practitioner(p, new_orgs.get(enc_practitioner.get(p["id"], "")))
        for p in sorted(by_type["Practitioner"], key=lambda p: p["id"])
    }

    all_practices = [*practices, *population_practices()]

    # 3. patients, each registered with one of the local GP practices
    patients = sorted(by_type["Patient"], key=lambda p: p["id"])
    new_patients: dict[str, dict] = {}
    for serial, p in enumerate(patients, start=1):
        gp = all_practices[_rng("gp", p["id"]).randrange(len(all_practices))]
        new_patients[p["id"]] = localise_patient(p, serial, gp)
    sex = {pid: p.get("gender") for pid, p in new_patients.items()}

    # 4. everything else
    out: list[dict] = []
    for r in resources:
        t = r["resourceType"]
        if t == "Patient":
            r = new_patients[r["id"]]
        elif t == "Organization":
            r = new_orgs[r["id"]]
        elif t == "Practitioner":
            r = new_pracs[r["id"]]
        elif t == "Observation":
            convert_observation(r, sex.get(_patient_of(r) or ""))
            for comp in r.get("component", []):
                convert_observation(comp, None)
            _uk_observation_text(r)
        elif t == "MedicationRequest":
            r = localise_medication(r)
        _retitle_display_refs(r, new_pracs, new_orgs, new_patients)
        tags = r.setdefault("meta", {}).setdefault("tag", [])
        if SYNTHEA_TAG not in tags:
            tags.append(SYNTHEA_TAG)
        out.append(r)
    own = population_practices()
    for gp, org in own:
        for x in (gp, org):
            x["meta"] = {"tag": [SYNTHEA_TAG]}
            out.append(x)
    return out


def _uk_observation_text(r: dict) -> None:
    # LOINC displays stay as LOINC publishes them; only our text drops US wording.
    text = r.get("code", {}).get("text", "")
    if "US Standard Certificate" in text:
        r["code"]["text"] = "Cause of death"
    elif text.startswith("US Guidance"):
        r["code"]["text"] = "Ultrasound guidance for biopsy of prostate"


def _retitle_display_refs(r: dict, pracs: dict, orgs: dict, patients: dict) -> None:
    """Reference.display strings that still carry a US name are rewritten to the new one."""

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and "display" in node and "/" in ref:
                t, i = ref.split("/", 1)
                if t == "Practitioner" and i in pracs:
                    node["display"] = _pname(pracs[i])
                elif t == "Organization" and i in orgs:
                    node["display"] = orgs[i]["name"]
                elif t == "Patient" and i in patients:
                    node["display"] = _pname(patients[i])
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    fix(r)
