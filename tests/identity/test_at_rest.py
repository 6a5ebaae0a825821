"""Patient data at rest: once an installation has accounts its application database is SQLCipher,
unreadable by sqlite3 or anyone without a sign-in; a database from before accounts is encrypted in
place, nothing lost; commands that open it sign in first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import accounts
import pytest
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.identity import keyring
from clarke_desktop.store import AppStore, StoreError


def test_a_database_from_before_accounts_is_encrypted_in_place_and_keeps_everything(data: Path) -> None:
    with AppStore() as store:  # no accounts yet: plaintext, as before this release
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_inputs(cid, transcript="Patient: the cough is better.", aside="")
    assert (data / "clarke.sqlite3").read_bytes()[:16] == b"SQLite format 3\x00"
    accounts.set_up(data)  # the first start's set-up opens the data key here
    with AppStore() as store:
        assert store.db.encrypted and store.inputs(cid).transcript == "Patient: the cough is better."
    raw = (data / "clarke.sqlite3").read_bytes()
    assert not raw.startswith(b"SQLite format 3") and b"the cough is better" not in raw
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(data / "clarke.sqlite3").execute("SELECT * FROM consultations").fetchall()
    assert not list(data.glob("*.encrypting"))


def test_without_a_sign_in_the_database_does_not_open(data: Path) -> None:
    accounts.set_up(data)
    AppStore().close()
    keyring.forget(data)  # a new process: nobody signed in
    with pytest.raises(StoreError, match="encrypted"):
        AppStore()
    keyring.remember(data, b"\x07" * 32)  # another installation's key
    with pytest.raises(StoreError, match="does not open with this installation's key"):
        AppStore()
    keyring.forget(data)
    accounts.signed_in(data)
    AppStore().close()


def test_commands_that_open_the_store_sign_in_first(data: Path, tmp_path: Path) -> None:
    accounts.set_up(data)
    AppStore().close()
    keyring.forget(data)
    refused = CliRunner().invoke(cli, ["audit", "verify"])
    assert refused.exit_code != 0 and "not signed in" in refused.output
    pw = tmp_path / "pw"
    pw.write_text(accounts.ADMIN_PASSWORD + "\n")
    ok = CliRunner().invoke(cli, ["audit", "verify", "--user", accounts.ADMIN, "--password-file", str(pw)])
    assert ok.exit_code == 0 and "intact" in ok.output


def test_the_apps_own_fhir_store_is_encrypted_and_local_fhir_signs_in_to_open_it(data: Path, tmp_path: Path) -> None:
    from clarke_desktop import demo_data, paths
    from clarke_desktop.fhir.local import LocalFhirClient
    from local_fhir.cli import main as local_fhir

    accounts.set_up(data)
    demo_data.ensure_database()  # created after the set-up: encrypted from its first byte
    db = paths.own_fhir_db_path()
    assert not db.read_bytes().startswith(b"SQLite format 3") and db.stat().st_mode & 0o777 == 0o600
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(db).execute("SELECT count(*) FROM resources").fetchone()
    client = LocalFhirClient(db)
    assert client.search_all("Observation", {"patient": "pt-001"})
    client.close()

    keyring.forget(data)  # `local-fhir` as its own process: nobody signed in
    refused = CliRunner().invoke(local_fhir, ["stats"])
    assert refused.exit_code != 0 and "sign in" in refused.output
    pw = tmp_path / "pw"
    pw.write_text(accounts.CLINICIAN_PASSWORD + "\n")
    ok = CliRunner().invoke(local_fhir, ["--user", accounts.CLINICIAN, "--password-file", str(pw), "stats"])
    assert ok.exit_code == 0 and '"resources"' in ok.output, ok.output


def test_recordings_and_pdfs_from_before_accounts_are_sealed_at_the_first_signed_in_start(data: Path) -> None:
    import hashlib

    from clarke_desktop.files import file_sha256
    from clarke_desktop.identity import sealed
    from clarke_desktop.store.sealing import seal_plaintext_files

    wav, pdf, changed = data / "recordings" / "old.wav", data / "exports" / "old.pdf", data / "recordings" / "x.wav"
    with AppStore() as store:  # before accounts: plaintext files, plaintext hashes
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        for path, body in ((wav, b"RIFF old recording"), (pdf, b"%PDF-1.7 old letter"), (changed, b"RIFF x")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        store.import_audio(cid, wav)
        store.import_audio(cid, changed)
        store.record_export(cid, pdf, version=1)
    changed.write_bytes(b"RIFF y")  # changed behind Clarke's back: must stay visible, not be sealed over
    accounts.set_up(data)
    with AppStore() as store:
        outcomes = seal_plaintext_files(store, actor="Dr S. Chen")
        assert {o.path.name: o.after is not None for o in outcomes} == {"old.wav": True, "old.pdf": True, "x.wav": False}
        for path, body in ((wav, b"RIFF old recording"), (pdf, b"%PDF-1.7 old letter")):
            assert sealed.is_sealed(path) and body not in path.read_bytes()
            assert sealed.read_bytes(path) == body
        assert store.latest_export(cid, 1).sha256 == file_sha256(pdf)
        assert {a.sha256 for a in store.audio(cid)} >= {file_sha256(wav)}
        entries = [e for e in store.audit_entries() if e.event == "file_sealed"]
        assert {e.data["plaintext_sha256"] for e in entries} == {
            hashlib.sha256(b"RIFF old recording").hexdigest(), hashlib.sha256(b"%PDF-1.7 old letter").hexdigest()
        }
        assert not sealed.is_sealed(changed)
        assert seal_plaintext_files(store, actor="Dr S. Chen") == [o for o in outcomes if o.after is None]


def test_a_kill_between_sealing_and_recording_the_hash_is_finished_at_the_next_start(data: Path) -> None:
    from clarke_desktop.files import file_sha256
    from clarke_desktop.identity import sealed
    from clarke_desktop.store.sealing import seal_plaintext_files

    wav = data / "recordings" / "old.wav"
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF old recording")
        store.import_audio(cid, wav)
    accounts.set_up(data)
    sealed.write_file(wav, b"RIFF old recording", sealed.files_key(wav))  # sealed, then killed
    with AppStore() as store:
        [done] = seal_plaintext_files(store, actor="Dr S. Chen")
        assert done.after == file_sha256(wav) and store.audio(cid)[0].sha256 == done.after
