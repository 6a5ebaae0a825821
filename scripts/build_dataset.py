#!/usr/bin/env python3
"""Build the bundled clinic dataset in resources/ (run by a developer; the app never runs this).

    .venv/bin/python scripts/build_dataset.py [--synthea ../shared/data/synthea-r4]

Writes, deterministically (same input -> byte-identical output):
  resources/fhir/demo/*.json           readable transaction bundles: clinic staff + 5 demo patients
  resources/fhir/population.ndjson.gz  UK-localised Synthea patients, one resource per line
  resources/fhir/SYNTHEA_LICENSE.txt   Synthea sample data licence (Apache-2.0) and notice
  resources/fhir/manifest.json         files, sha256, counts by type, dataset version
  resources/clinic/clinic.json         today's clinic: clinician, appointment times, summaries
  tests/data/gold_facts/pt-00N.json    what a correct PatientContext holds for each demo patient
Every resource is validated with fhir.resources.R4B before anything is written.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset_common import (  # noqa: E402
    CLINIC_DIR,
    FHIR_DIR,
    GOLD_DIR,
    REPO,
    transaction_bundle,
    validate_all,
    write_json,
)
from dataset_demo import (  # noqa: E402
    CLINICIAN,
    CLINICIAN_ID,
    CLINICIAN_ROLE,
    CLINICIAN_ROLE_ID,
    GP_PRACTICES,
    GPS,
    HOSPITAL,
    HOSPITAL_ID,
    build_demo,
)
from dataset_synthea import load_synthea, localise  # noqa: E402

DATASET_VERSION = "2026.11.1"
TYPE_ORDER = ["Organization", "Practitioner", "PractitionerRole", "Location", "Patient", "Encounter"]

DEMO_APPOINTMENTS = [
    ("pt-001", "14:00", "Follow-up: type 2 diabetes, rising HbA1c"),
    ("pt-002", "14:20", "Follow-up: chest pain, post-angiography"),
    ("pt-003", "14:40", "Review: asthma, poor symptom control"),
    ("pt-004", "15:00", "Review: heart failure, recent decompensation"),
    ("pt-005", "15:20", "Follow-up: depression, medication review"),
]
EXTRA_SLOTS = ["15:40", "16:00", "16:20"]
CHRONIC = {  # SNOMED codes Synthea uses -> clinic summary wording
    "38341003": "hypertension",
    "44054006": "type 2 diabetes",
    "15777000": "prediabetes",
    "88805009": "heart failure",
    "49436004": "atrial fibrillation",
    "53741008": "coronary heart disease",
    "87433001": "emphysema",
    "185086009": "COPD",
    "55822004": "hyperlipidaemia",
    "64859006": "osteoporosis",
}


def type_key(r: dict) -> tuple[int, str, str]:
    t = r["resourceType"]
    return (TYPE_ORDER.index(t) if t in TYPE_ORDER else len(TYPE_ORDER), t, r["id"])


def write_ndjson_gz(path: Path, resources: list[dict]) -> None:
    buf = io.BytesIO()
    # mtime=0 and no filename: the same resources give the same bytes on every run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for r in resources:
            gz.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    path.write_bytes(buf.getvalue())


def choose_extra_patients(population: list[dict]) -> list[tuple[str, str]]:
    """Three living adults with a chronic condition, for a realistic clinic list."""
    alive = {
        r["id"]: r
        for r in population
        if r["resourceType"] == "Patient" and "deceasedDateTime" not in r and r["birthDate"] < "2000-01-01"
    }
    problems: dict[str, list[str]] = {}
    for r in population:
        if r["resourceType"] != "Condition" or r["clinicalStatus"]["coding"][0]["code"] != "active":
            continue
        pid = r["subject"]["reference"].split("/")[1]
        label = CHRONIC.get(r["code"]["coding"][0]["code"])
        if pid in alive and label and label not in problems.get(pid, []):
            problems.setdefault(pid, []).append(label)
    ranked = sorted(problems.items(), key=lambda kv: (-len(kv[1]), kv[0]))[: len(EXTRA_SLOTS)]
    return [(pid, "Review: " + ", ".join(labels)) for pid, labels in ranked]


def build(synthea_dir: Path) -> dict:
    shared, demo, gold = build_demo()
    population = localise(load_synthea(synthea_dir), [(GPS[k], GP_PRACTICES[k]) for k in sorted(GPS)])
    population.sort(key=type_key)

    n = validate_all(shared) + sum(validate_all(v) for v in demo.values()) + validate_all(population)
    print(f"validated {n} resources with fhir.resources.R4B", file=sys.stderr)
    check_references(shared, demo, population)

    demo_dir = FHIR_DIR / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    for old in demo_dir.glob("*.json"):
        old.unlink()
    write_json(
        demo_dir / "00_clinic_staff.json", transaction_bundle(sorted(shared, key=type_key), "clinic-staff")
    )
    for pid, resources in demo.items():
        write_json(demo_dir / f"{pid}.json", transaction_bundle(resources, f"demo-{pid}"))
    write_ndjson_gz(FHIR_DIR / "population.ndjson.gz", population)
    licence = (synthea_dir / "LICENSE").read_text(encoding="utf-8")
    (FHIR_DIR / "SYNTHEA_LICENSE.txt").write_text(
        "population.ndjson.gz is derived from the Synthea sample data published by SMART Health IT\n"
        "(smart-on-fhir/generated-sample-data, Synthea R4). It was localised to UK conventions by\n"
        "scripts/build_dataset.py: names, addresses, identifiers, providers, units and medicine names\n"
        "were replaced, US billing resources removed and all dates moved forward by five years.\n"
        "The original licence follows.\n\n" + licence,
        encoding="utf-8",
    )

    extras = choose_extra_patients(population)
    clinic = {
        "clinician": {
            "name": "Dr Sarah Chen",
            "title": "Consultant Physician",
            "specialty": "General Internal Medicine",
            "practitioner_id": CLINICIAN_ID,
            "practitioner_role_id": CLINICIAN_ROLE_ID,
        },
        "location": {
            "organization_id": HOSPITAL_ID,
            "name": f"General Medical Outpatients, {HOSPITAL['name']}",
        },
        "timezone": "Europe/London",
        "slot_minutes": 20,
        "appointments": [
            {"patient_id": pid, "time": t, "summary": s, "demo": True} for pid, t, s in DEMO_APPOINTMENTS
        ]
        + [
            {"patient_id": pid, "time": t, "summary": s, "demo": False}
            for (pid, s), t in zip(extras, EXTRA_SLOTS, strict=False)
        ],
    }
    assert CLINICIAN["id"] == CLINICIAN_ID and CLINICIAN_ROLE["id"] == CLINICIAN_ROLE_ID
    write_json(CLINIC_DIR / "clinic.json", clinic)

    for pid, facts in gold.items():
        write_json(GOLD_DIR / f"{pid}.json", facts)

    files = sorted(p for p in FHIR_DIR.rglob("*") if p.is_file() and p.name != "manifest.json")
    files.append(CLINIC_DIR / "clinic.json")
    counts = Counter(r["resourceType"] for r in population)
    demo_counts = Counter(r["resourceType"] for r in [*shared, *(r for v in demo.values() for r in v)])
    manifest = {
        "dataset_version": DATASET_VERSION,
        "files": {str(p.relative_to(REPO / "resources")): sha256(p) for p in files},
        "counts": {
            "demo": dict(sorted(demo_counts.items())),
            "population": dict(sorted(counts.items())),
            "total": sum(counts.values()) + sum(demo_counts.values()),
        },
        "patients": {"demo": sorted(demo), "population": counts["Patient"]},
    }
    write_json(FHIR_DIR / "manifest.json", manifest)
    return manifest


def check_references(shared: list[dict], demo: dict[str, list[dict]], population: list[dict]) -> None:
    """Every literal reference must point at a resource in the dataset."""
    everything = [*shared, *(r for v in demo.values() for r in v), *population]
    known = {f"{r['resourceType']}/{r['id']}" for r in everything}
    missing: Counter = Counter()

    def walk(node: object, owner: str) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref not in known and not ref.startswith("#"):
                missing[(owner, ref.split("/")[0])] += 1
            for v in node.values():
                walk(v, owner)
        elif isinstance(node, list):
            for v in node:
                walk(v, owner)

    for r in everything:
        walk(r, r["resourceType"])
    if missing:
        raise ValueError(f"dangling references (owner type, target type): {dict(missing)}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthea", type=Path, default=REPO.parent / "shared" / "data" / "synthea-r4")
    args = ap.parse_args(argv)
    if not args.synthea.is_dir():
        ap.error(f"Synthea folder not found: {args.synthea}")
    manifest = build(args.synthea)
    print(json.dumps(manifest["counts"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
