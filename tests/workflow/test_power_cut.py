"""Durability: a power cut between the FHIR store's commit of a write-back and the app database's record of it
(issue #16): the letter is in the hospital record, Clarke does not know. The retry at the next start
(`recover --apply`) must find it there, record it, and file nothing twice."""

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
from clarke_desktop.writeback import CONSULTATION_SYSTEM

REPO = Path(__file__).resolve().parents[2]


class PowerCut(BaseException):
    """The machine stops: nothing after this line runs (not an Exception: nothing catches it)."""


def _fhir_with_patient(db: Path) -> None:
    from local_fhir.importer import import_paths
    from local_fhir.store import Store

    store = Store(db)
    assert all(f.ok for f in import_paths(store, [REPO / "resources" / "fhir" / "demo" / "pt-001.json"]).files)
    store.close()


def test_a_write_back_committed_before_the_power_cut_is_found_not_filed_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(data))
    db = data / "fhir.sqlite3"
    data.mkdir()
    _fhir_with_patient(db)

    def cut(*_a: object, **_k: object) -> None:
        raise PowerCut

    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
        monkeypatch.setattr(AppStore, "record_writeback", cut)
        fhir = LocalFhirClient(db)
        with pytest.raises(PowerCut):
            sign_off_and_export(store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=fhir)
        fhir.close()
    monkeypatch.undo()
    monkeypatch.setenv("CLARKE_DATA_DIR", str(data))

    def letters() -> list[dict[str, object]]:
        client = LocalFhirClient(db)
        try:
            return client.search_all("DocumentReference", {"identifier": f"{CONSULTATION_SYSTEM}|{cid}/v1"})
        finally:
            client.close()

    assert len(letters()) == 1  # in the record; the app database never heard
    applied = CliRunner().invoke(cli, ["recover", "--apply", "--json"])
    assert applied.exit_code == 0, applied.output
    (item,) = json.loads(applied.output)["writebacks"]
    assert item["consultation_id"] == cid and item["document_reference"]
    found = letters()
    assert len(found) == 1 and item["document_reference"] == f"DocumentReference/{found[0]['id']}"
    client = LocalFhirClient(db)
    try:
        compositions = client.search_all("Composition", {"identifier": f"{CONSULTATION_SYSTEM}|{cid}/v1"})
        encounters = client.search_all("Encounter", {"identifier": f"{CONSULTATION_SYSTEM}|{cid}"})
    finally:
        client.close()
    assert len(compositions) == 1 and len(encounters) == 1
    with AppStore() as store:
        assert store.pending_writebacks() == []


def test_a_full_disk_at_the_anchor_write_never_turns_a_committed_sign_off_into_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from clarke_desktop.store.audit import AuditLog

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
        monkeypatch.setattr(AuditLog, "write_anchor", disk_full)
        final = sign_off_and_export(store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=None)
        assert store.latest_letter(cid).signed and final.pdf_path.is_file()
        monkeypatch.undo()
        report = store.verify_audit()
    assert report.ok and any("interrupted write" in n for n in report.notes)
