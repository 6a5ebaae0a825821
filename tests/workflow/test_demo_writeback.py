"""A letter drafted by the demo model can be signed and printed for practice, but it is never
written back to a record other than the bundled demo store (a store named by CLARKE_FHIR_DB or a
hospital server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import workflow_samples as samples

from clarke_desktop import paths
from clarke_desktop.config import Settings
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.pipeline import sign_off_and_export
from clarke_desktop.pipeline.finalise import DEMO_NOT_WRITTEN
from clarke_desktop.store import AppStore


def _sign(tmp_path: Path, *, demo: bool, fhir_db: Path):
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, demo=demo, discrepancy=False))
        client = LocalFhirClient(fhir_db)
        try:
            before = len(client.search_all("DocumentReference", {"patient": "pt-001"}))
            final = sign_off_and_export(
                store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=client
            )
            after = len(client.search_all("DocumentReference", {"patient": "pt-001"}))
        finally:
            client.close()
    assert final.pdf_path.read_bytes()[:5] == b"%PDF-"  # printed either way
    return final, after - before


@pytest.fixture
def named_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_db: Path) -> Path:
    """A copy of a store the user points Clarke at (CLARKE_FHIR_DB), not the app's own."""
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    named = tmp_path / "hospital-copy.sqlite3"
    shutil.copy(demo_db, named)
    monkeypatch.setenv("CLARKE_FHIR_DB", str(named))
    assert paths.fhir_db_is_named()
    return named


def test_a_demo_letter_is_not_written_to_a_named_store(tmp_path: Path, named_store: Path) -> None:
    final, written = _sign(tmp_path, demo=True, fhir_db=named_store)
    assert written == 0 and final.document_reference is None
    assert DEMO_NOT_WRITTEN in final.warnings


def test_a_real_model_letter_is_written_to_the_named_store(tmp_path: Path, named_store: Path) -> None:
    final, written = _sign(tmp_path, demo=False, fhir_db=named_store)
    assert written == 1 and final.document_reference


def test_a_demo_letter_is_written_to_the_apps_own_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_db: Path
) -> None:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLARKE_FHIR_DB", raising=False)
    own = paths.own_fhir_db_path()
    own.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_db, own)
    final, written = _sign(tmp_path, demo=True, fhir_db=own)
    assert written == 1 and final.document_reference
