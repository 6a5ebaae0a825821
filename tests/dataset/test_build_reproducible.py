"""The committed dataset is exactly what scripts/build_dataset.py makes from ../shared."""

from __future__ import annotations

import gzip
import json

from build_dataset import choose_extra_patients, type_key
from conftest import FHIR  # at import time: later, 'conftest' may name another folder's
from dataset_demo import GP_PRACTICES, GPS, build_demo
from dataset_synthea import load_synthea, localise


def test_population_file_is_reproducible(population, shared_dir) -> None:
    fresh = localise(
        load_synthea(shared_dir / "data" / "synthea-r4"), [(GPS[k], GP_PRACTICES[k]) for k in sorted(GPS)]
    )
    fresh.sort(key=type_key)
    assert len(fresh) == len(population)
    # compare as the file stores them (JSON text), so float formatting counts too
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in fresh]
    committed = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in population]
    assert lines == committed


def test_demo_bundles_are_reproducible(demo_bundles) -> None:
    shared, per_patient, _ = build_demo()
    for pid, resources in per_patient.items():
        assert demo_bundles[pid] == resources, pid
    assert sorted(r["id"] for r in demo_bundles["00_clinic_staff"]) == sorted(r["id"] for r in shared)


def test_clinic_extras_are_living_adults(population) -> None:
    extras = choose_extra_patients(population)
    assert len(extras) == 3
    patients = {r["id"]: r for r in population if r["resourceType"] == "Patient"}
    for pid, summary in extras:
        assert "deceasedDateTime" not in patients[pid]
        assert summary.startswith("Review: ")


def test_population_file_is_gzip_ndjson(population) -> None:
    with gzip.open(FHIR / "population.ndjson.gz", "rt", encoding="utf-8") as fh:
        first = fh.readline()
    assert json.loads(first)["resourceType"] == "Organization"  # providers first, then patients
