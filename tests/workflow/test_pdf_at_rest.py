"""Signed letters at rest once an installation has accounts: the PDF kept in the data folder and the
sign-off preview are sealed (no "%PDF" on disk); write-back and its retry send the PDF itself; the
one plaintext PDF is a copy the user asks for, outside the data folder, audited with its
destination. Without a key, PDFs are plaintext as before (test_writeback_retry, test_pdf_writeback)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import accounts
import pytest
import workflow_samples as samples

from clarke_desktop import paths
from clarke_desktop.config import Settings
from clarke_desktop.files import file_sha256
from clarke_desktop.identity import keyring, sealed
from clarke_desktop.pipeline import retry_writeback, sign_off_and_export
from clarke_desktop.pipeline.finalise import export_copy, preview_sign_off
from clarke_desktop.store import AppStore, AuditEvent, StoreError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(folder))
    accounts.set_up(folder)
    yield folder
    keyring.forget(folder)


@pytest.fixture
def fhir(tmp_path: Path):
    """A FHIR store with the demo patient, outside the data folder (its encryption is not this test's)."""
    from clarke_desktop.fhir.local import LocalFhirClient
    from local_fhir.importer import import_paths
    from local_fhir.store import Store

    db = tmp_path / "fhir" / "fhir.sqlite3"
    db.parent.mkdir()
    store = Store(db)
    assert all(
        f.ok for f in import_paths(store, [REPO / "resources" / "fhir" / "demo" / "pt-001.json"]).files
    )
    store.close()
    client = LocalFhirClient(db)
    yield client
    client.close()


def _drafted(store: AppStore) -> str:
    cid = store.create_consultation("pt-001", clinician=accounts.CLINICIAN_NAME).id
    store.save_context(cid, samples.context())
    store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
    return cid


def test_a_signed_pdf_is_kept_sealed_and_the_record_gets_the_pdf_itself(data: Path, fhir) -> None:
    with AppStore() as store:
        cid = _drafted(store)
        final = sign_off_and_export(
            store, cid, accounts.CLINICIAN_NAME, paths.exports_dir(), settings=Settings(), fhir=fhir
        )
        export = store.latest_export(cid, final.version)
    stored = final.pdf_path.read_bytes()
    assert final.pdf_encrypted and final.pdf_path.parent == data / "exports"
    assert stored.startswith(sealed.MAGIC) and b"%PDF" not in stored
    assert oct(final.pdf_path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in (data / "exports").iterdir() if p.name.endswith(".tmp")]
    # The recorded sha256 is of the file as stored (the sealed bytes): it pins that exact file.
    assert export is not None and export.sha256 == final.pdf_sha256 == file_sha256(final.pdf_path)
    pdf = sealed.read_bytes(final.pdf_path)
    assert pdf.startswith(b"%PDF-")

    attachment = fhir.read(*final.document_reference.split("/"))["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]) == pdf  # the PDF, never the sealed file
    assert attachment["size"] == len(pdf)
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(pdf).digest()


def test_the_write_back_retry_sends_the_sealed_pdf_decrypted_and_refuses_a_changed_one(
    data: Path, fhir
) -> None:
    with AppStore() as store:
        cid = _drafted(store)
        final = sign_off_and_export(
            store, cid, accounts.CLINICIAN_NAME, paths.exports_dir(), settings=Settings(), fhir=None
        )
        [pending] = store.pending_writebacks()
        done = retry_writeback(store, pending, settings=Settings(), fhir=fhir)
        assert done.document_reference and done.pdf_encrypted
        attachment = fhir.read(*done.document_reference.split("/"))["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == sealed.read_bytes(final.pdf_path)

        other = _drafted(store)
        second = sign_off_and_export(
            store, other, accounts.CLINICIAN_NAME, paths.exports_dir(), settings=Settings(), fhir=None
        )
        sealed.write_file(second.pdf_path, b"%PDF-1.4 another letter", sealed.files_key(second.pdf_path))
        [pending] = store.pending_writebacks()
        with pytest.raises(StoreError, match="changed since sign-off"):
            retry_writeback(store, pending, settings=Settings(), fhir=fhir)


def test_a_readable_copy_goes_only_outside_the_data_folder_and_is_audited(data: Path, tmp_path: Path) -> None:
    with AppStore() as store:
        cid = _drafted(store)
        final = sign_off_and_export(
            store, cid, accounts.CLINICIAN_NAME, paths.exports_dir(), settings=Settings(), fhir=None
        )
        with pytest.raises(StoreError, match="inside Clarke's data folder"):
            export_copy(
                store, cid, final.version, data / "exports" / "plain.pdf", actor=accounts.CLINICIAN_NAME
            )
        target = tmp_path / "for the GP" / "letter.pdf"
        copy = export_copy(store, cid, final.version, target, actor=accounts.CLINICIAN_NAME)
        entries = [e for e in store.audit_entries(cid) if e.event == AuditEvent.EXPORTED]
        assert store.verify_audit().ok
    written = target.read_bytes()
    assert written == sealed.read_bytes(final.pdf_path) and written.startswith(b"%PDF-")
    assert copy.path == target and copy.sha256 == hashlib.sha256(written).hexdigest()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert not (data / "exports" / "plain.pdf").exists()
    stored_entry, copy_entry = entries
    assert "destination" not in stored_entry.data and stored_entry.data["sha256"] == final.pdf_sha256
    assert copy_entry.data["destination"] == str(target) and copy_entry.data["readable_copy"] is True
    assert copy_entry.data["sha256"] == copy.sha256 and copy_entry.data["stored_sha256"] == final.pdf_sha256
    assert copy_entry.actor == accounts.CLINICIAN_NAME


def test_the_sign_off_preview_is_sealed_and_nothing_opens_it_without_a_sign_in(data: Path) -> None:
    with AppStore() as store:
        cid = _drafted(store)
        document = store.latest_letter(cid).document
        preview = preview_sign_off(
            store,
            cid,
            document,
            accounts.CLINICIAN_NAME,
            data / "previews" / f"{cid}.pdf",
            settings=Settings(),
        )
    assert b"%PDF" not in preview.pdf_path.read_bytes()
    assert sealed.read_bytes(preview.pdf_path).startswith(b"%PDF-")
    keyring.forget(data)
    with pytest.raises(sealed.NoKey):
        sealed.read_bytes(preview.pdf_path)


def test_run_consultation_out_is_an_explicit_export_of_a_copy(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's sign-off with `out_dir` (what `run-consultation --out` passes): the letter is
    kept sealed in the data folder, a readable copy is written to the folder and audited, and the
    result names the copy; a folder inside the data folder is refused before anything is signed."""
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.session.errors import SessionError
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    with AppStore() as store:
        cid = _drafted(store)
    identity = Identity()
    service = ConsultationService(signed_in=accounts.signed_in(data), identity=identity)

    def no_fhir() -> None:
        raise FhirError("the record is down")

    monkeypatch.setattr(service, "_fhir", no_fhir)
    try:
        with pytest.raises(SessionError, match="inside Clarke's data folder"):
            service.sign_off(cid, out_dir=data / "letters")
        with AppStore() as store:
            assert not store.latest_letter(cid).signed and not (data / "letters").exists()
        final = service.sign_off(cid, out_dir=tmp_path / "out")
    finally:
        service.close()
        identity.close()
    assert final.pdf_path.parent == tmp_path / "out" and not final.pdf_encrypted
    assert final.pdf_path.read_bytes().startswith(b"%PDF-")
    assert final.pdf_sha256 == file_sha256(final.pdf_path)
    [kept] = (data / "exports").iterdir()
    assert b"%PDF" not in kept.read_bytes() and sealed.read_bytes(kept) == final.pdf_path.read_bytes()
    with AppStore() as store:
        assert store.latest_letter(cid).signed
        exported = [e.data for e in store.audit_entries(cid) if e.event == AuditEvent.EXPORTED]
        assert [d.get("destination") for d in exported] == [None, str(final.pdf_path)]
