"""Fixtures for the bundled dataset tests: the committed files, read as the app reads them."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources"
FHIR = RESOURCES / "fhir"
DEMO_AUDIO = RESOURCES / "demo"
GOLD = REPO / "tests" / "data" / "gold_facts"
SCRIPTS = REPO / "scripts"
DEMO_IDS = ["pt-001", "pt-002", "pt-003", "pt-004", "pt-005"]

if str(SCRIPTS) not in sys.path:  # the build helpers live in scripts/ (developer tools, not a package)
    sys.path.insert(0, str(SCRIPTS))


def _bundle_resources(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction", path
    return [e["resource"] for e in bundle["entry"]]


@pytest.fixture(scope="session")
def demo_bundles() -> dict[str, list[dict[str, Any]]]:
    """File stem (00_clinic_staff, pt-001 ...) -> resources."""
    return {p.stem: _bundle_resources(p) for p in sorted((FHIR / "demo").glob("*.json"))}


@pytest.fixture(scope="session")
def demo_resources(demo_bundles) -> list[dict[str, Any]]:
    return [r for rs in demo_bundles.values() for r in rs]


@pytest.fixture(scope="session")
def population() -> list[dict[str, Any]]:
    with gzip.open(FHIR / "population.ndjson.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def by_ref(demo_resources, population) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in [*demo_resources, *population]}


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    return json.loads((FHIR / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database seeded by ensure_database (slow: ~10k resources), copied by tests that write."""
    from clarke_desktop.demo_data import ensure_database

    db = tmp_path_factory.mktemp("seeded") / "fhir.sqlite3"
    assert ensure_database(db) == db
    return db


@pytest.fixture
def db_copy(seeded_db: Path, tmp_path: Path) -> Path:
    for f in seeded_db.parent.iterdir():
        if f.name.startswith(seeded_db.name):
            shutil.copyfile(f, tmp_path / f.name)
    return tmp_path / seeded_db.name
