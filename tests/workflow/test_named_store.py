"""A FHIR store the user names (CLARKE_FHIR_DB) is theirs: the app never seeds demo patients or
books the demo clinic into it, and a missing one is a clear error, never silently created."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from local_fhir import Store

FOREIGN_PATIENT = {
    "resourceType": "Patient", "id": "pt-004", "name": [{"family": "Other", "given": ["Project"]}],
    "birthDate": "1971-07-07", "gender": "female",
}  # fmt: skip
FOREIGN_MED = {
    "resourceType": "MedicationRequest", "id": "med-x", "status": "active", "intent": "order",
    "subject": {"reference": "Patient/pt-004"}, "medicationCodeableConcept": {"text": "Lithium carbonate 400mg"},
}  # fmt: skip


def _content(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT rtype, id, version, json FROM resources ORDER BY rtype, id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "theirs.sqlite3"
    store = Store(path)
    store.create(FOREIGN_PATIENT)
    store.create(FOREIGN_MED)
    store.close()
    monkeypatch.setenv("CLARKE_FHIR_DB", str(path))
    return path


def test_the_demo_dataset_never_seeds_a_named_store(named: Path) -> None:
    from clarke_desktop.demo_data import ensure_database

    before = _content(named)
    assert ensure_database() == named
    assert _content(named) == before


@pytest.mark.gui
def test_the_app_opens_a_named_store_without_demo_patients_or_a_demo_clinic(named: Path) -> None:
    from clarke_desktop.agent.context import retrieve_context
    from clarke_desktop.fhir.local import LocalFhirClient
    from clarke_desktop.session.service import ConsultationService

    before = _content(named)
    backend = ConsultationService()
    try:
        _clinician, patients = backend.clinic()
    finally:
        backend.close()
    assert patients == [] and _content(named) == before
    client = LocalFhirClient(named)
    try:
        context = retrieve_context(client, "pt-004")
    finally:
        client.close()
    assert [m.name for m in context.medications] == ["Lithium carbonate 400mg"]
    assert context.demographics.date_of_birth == "1971-07-07" and context.allergies == []


def test_a_named_store_that_does_not_exist_is_an_error_not_a_new_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarke_desktop.config import Settings
    from clarke_desktop.demo_data import DatasetError, ensure_database
    from clarke_desktop.fhir.client import FhirUnavailable
    from clarke_desktop.pipeline.components import open_fhir

    missing = tmp_path / "missing.sqlite3"
    monkeypatch.setenv("CLARKE_FHIR_DB", str(missing))
    with pytest.raises(DatasetError, match="local-fhir init"):
        ensure_database()
    with pytest.raises(FhirUnavailable, match="never creates"):
        open_fhir(Settings())
    assert not missing.exists()
