"""A letter signed while the FHIR store was down reaches it later through `recover --apply`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import workflow_samples as samples
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.config import Settings
from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.pipeline import sign_off_and_export
from clarke_desktop.store import AppStore

REPO = Path(__file__).resolve().parents[2]


def _signed_without_fhir(tmp_path: Path) -> tuple[str, Path]:
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
        final = sign_off_and_export(
            store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=None
        )
        assert final.document_reference is None and "unavailable" in final.warnings[0]
        assert [p.consultation_id for p in store.pending_writebacks()] == [cid]
    return cid, final.pdf_path


def _fhir_with_patient(db: Path) -> None:
    from local_fhir.importer import import_paths
    from local_fhir.store import Store

    store = Store(db)
    assert all(
        f.ok for f in import_paths(store, [REPO / "resources" / "fhir" / "demo" / "pt-001.json"]).files
    )
    store.close()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_recover_writes_back_a_letter_signed_while_fhir_was_down(data: Path, tmp_path: Path) -> None:
    cid, pdf = _signed_without_fhir(tmp_path)
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["recover", "--json"]).output)
    assert [w["consultation_id"] for w in listed["writebacks"]] == [cid]

    _fhir_with_patient(data / "fhir.sqlite3")
    applied = runner.invoke(cli, ["recover", "--apply", "--json"])
    assert applied.exit_code == 0, applied.output
    (item,) = json.loads(applied.output)["writebacks"]
    assert item["document_reference"].startswith("DocumentReference/")
    client = LocalFhirClient(data / "fhir.sqlite3")
    try:
        doc_ref = client.read(*item["document_reference"].split("/"))
        assert doc_ref["content"][0]["attachment"]["size"] == pdf.stat().st_size
    finally:
        client.close()
    with AppStore() as store:
        assert store.pending_writebacks() == []
        assert store.consultation(cid).document_reference == item["document_reference"]
        assert store.verify_audit().ok


def test_a_pdf_changed_after_sign_off_is_not_sent(data: Path, tmp_path: Path) -> None:
    cid, pdf = _signed_without_fhir(tmp_path)
    pdf.write_bytes(pdf.read_bytes() + b"\n% edited")
    _fhir_with_patient(data / "fhir.sqlite3")
    applied = CliRunner().invoke(cli, ["recover", "--apply", "--json"])
    (item,) = json.loads(applied.output)["writebacks"]
    assert "changed since sign-off" in item["error"] and "document_reference" not in item
