"""Fixtures: the real local_fhir store loaded with the bundled demo patients, behind the real
LocalFhirClient; a wrapper that injects failures (to test the logic around the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clarke_desktop.fhir.client import FhirError
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.paths import resources_dir
from local_fhir import Store

DEMO_PATIENTS = ("pt-001", "pt-002", "pt-003", "pt-004", "pt-005")


def load_demo_store(path: Path) -> Store:
    store = Store(path)
    report = store.import_paths(sorted((resources_dir() / "fhir" / "demo").glob("*.json")))
    assert all(f.ok for f in report.files), report
    return store


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fhir") / "demo.sqlite3"
    load_demo_store(path).close()
    return path


@pytest.fixture
def fhir(demo_db: Path):
    client = LocalFhirClient(demo_db)
    yield client
    client.close()


@pytest.fixture
def writable_fhir(tmp_path: Path):
    """A private copy of the demo store for tests that write."""
    store = load_demo_store(tmp_path / "fhir.sqlite3")
    client = LocalFhirClient(store)
    yield client
    store.close()


class FailingFhir:
    """The real client, with chosen calls failing or returning altered resources."""

    def __init__(self, inner: Any, fail_search: dict[str, FhirError] | None = None,
                 fail_read: dict[str, FhirError] | None = None, extra: dict[str, list[dict]] | None = None):  # fmt: skip
        self.inner = inner
        self.fail_search = fail_search or {}
        self.fail_read = fail_read or {}
        self.extra = extra or {}

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        if resource_type in self.fail_read:
            raise self.fail_read[resource_type]
        return self.inner.read(resource_type, id)

    def search_all(self, resource_type: str, params=None) -> list[dict[str, Any]]:
        if resource_type in self.fail_search:
            raise self.fail_search[resource_type]
        return self.inner.search_all(resource_type, params) + self.extra.get(resource_type, [])

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class _LiveEngine:
    """The registry's current engine for a role, looked up at each use: a test that shuts models down
    (close_all) must not leave later tests holding a closed engine."""

    def __init__(self, role: str) -> None:
        self.role = role

    def __getattr__(self, name: str):
        from clarke_desktop.llm.registry import get_engine

        return getattr(get_engine(self.role), name)


@pytest.fixture(scope="session")
def embedded_engine():
    """The product's engine for the letter/EHR roles: with no MedGemma installed, the embedded
    Gemma 3 270M GGUF (real llama.cpp inference), flagged as a demo model."""
    engine = _LiveEngine("letter_writer")
    assert engine.info.demo, "tests expect the embedded demo model (no model pack installed)"
    return engine
