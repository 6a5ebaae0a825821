"""`keys rotate` re-encrypts the patient data under a new data key (issue #15): both databases and
every sealed file move to it, the old key alone opens nothing, the audit log stays checkable across
the change (and against a checkpoint taken before it), and a rotation killed part-way loses nothing:
every sign-in opens both keys and finishes the move, and `keys rotate` again finishes the rest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import accounts
import pytest
from click.testing import CliRunner

from clarke_desktop import demo_data, paths
from clarke_desktop.cli import cli
from clarke_desktop.files import file_sha256
from clarke_desktop.identity import AccountBook, SignInError, keyring, sealed
from clarke_desktop.identity.keys import subkey
from clarke_desktop.session.identity import Identity
from clarke_desktop.session.rotation import reencrypt
from clarke_desktop.store import AppStore
from local_fhir import cipher

WAV, PDF = b"RIFF a consultation recording", b"%PDF-1.7 a signed letter"


def _installation(data: Path, tmp_path: Path) -> tuple[str, str, bytes, Path]:
    """Set up with a recording, a signed PDF, the FHIR store and some audit: (consultation id,
    recovery key, the data key, the admin's password file)."""
    _, recovery = accounts.set_up(data)
    old_key = keyring.data_keys(data)[0]
    demo_data.ensure_database()
    wav, pdf = data / "recordings" / "a.wav", data / "exports" / "a.pdf"
    for path, body in ((wav, WAV), (pdf, PDF)):
        path.parent.mkdir(parents=True, exist_ok=True)
        sealed.write_bytes(path, body)
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.import_audio(cid, wav)
        store.record_export(cid, pdf, version=1)
    pw = tmp_path / "admin.pw"
    pw.write_text(accounts.ADMIN_PASSWORD + "\n")
    return cid, recovery, old_key, pw


def _identity(data: Path) -> Identity:
    identity = Identity()
    identity.book.close()
    identity.book = AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST)
    return identity


def _opens(path: Path, key: bytes) -> bool:
    try:
        cipher.connect(path, key).close()
    except cipher.WrongKey:
        return False
    return True


def _everything_under(data: Path, key: bytes, cid: str) -> None:
    """Both databases and both files open with `key` alone, the records still match the files."""
    assert _opens(paths.app_db_path(), subkey(key, "app-db"))
    assert _opens(paths.own_fhir_db_path(), subkey(key, "fhir-db"))
    for path, body in ((data / "recordings" / "a.wav", WAV), (data / "exports" / "a.pdf", PDF)):
        assert sealed.read_file(path, subkey(key, sealed.PURPOSE)) == body
    with AppStore() as store:
        assert store.latest_export(cid, 1).sha256 == file_sha256(data / "exports" / "a.pdf")
        assert store.audio(cid)[0].sha256 == file_sha256(data / "recordings" / "a.wav")


def test_rotation_moves_every_store_and_file_to_a_new_key(data: Path, tmp_path: Path) -> None:
    cid, old_recovery, old_key, pw = _installation(data, tmp_path)
    with AppStore() as store:
        before_rotation = store.audit_checkpoint()
    keyring.forget(data)
    rotated = CliRunner().invoke(cli, ["keys", "rotate", "--user", accounts.ADMIN, "--password-file", str(pw)])
    assert rotated.exit_code == 0 and "re-encrypted under a new data key" in rotated.output, rotated.output
    new_recovery = rotated.output.strip().rsplit(" ", 1)[-1]

    keyring.forget(data)  # a new process: the clinician signs in and gets the new key
    clinician = accounts.signed_in(data)
    new_key = keyring.data_keys(data)[0]
    assert new_key != old_key and clinician.data_key == new_key
    _everything_under(data, new_key, cid)
    assert not _opens(paths.app_db_path(), subkey(old_key, "app-db"))  # the old key alone: nothing
    assert not _opens(paths.own_fhir_db_path(), subkey(old_key, "fhir-db"))
    assert sealed.opening_key(data / "exports" / "a.pdf", [subkey(old_key, sealed.PURPOSE)]) is None

    with AppStore() as store:
        report = store.verify_audit(before_rotation)  # both spans checked, each with its own key
        events = [e.event for e in store.audit_entries()]
    assert report.ok and report.checkpoint["ok"], report.problems
    assert "audit_rekeyed" in events and "keys_rotated" in events
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        with pytest.raises(SignInError):
            book.recover(old_recovery)
        keyring.forget(data)
        assert book.recover(new_recovery) == new_key
        assert keyring.data_keys(data) == [new_key, old_key]  # the retired key still opens a backup


def test_a_rotation_killed_part_way_is_finished_by_the_next_sign_in_and_the_next_rotate(
    data: Path, tmp_path: Path
) -> None:
    cid, old_recovery, old_key, pw = _installation(data, tmp_path)
    admin = accounts.signed_in(data, accounts.ADMIN, accounts.ADMIN_PASSWORD)
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        new_key = book.begin_rotation(admin)  # journalled ...
    cipher.rekey(paths.app_db_path(), [subkey(k, "app-db") for k in (new_key, old_key)])  # ... one step ...
    # ... and killed: the FHIR store and the files are still under the old key, every account too.
    keyring.forget(data)
    identity = _identity(data)
    try:
        identity.sign_in(accounts.CLINICIAN, accounts.CLINICIAN_PASSWORD)  # opens both, finishes the move
    finally:
        identity.close()
    assert keyring.data_keys(data)[:2] == [new_key, old_key]
    _everything_under(data, new_key, cid)
    with AppStore() as store:
        assert store.verify_audit().ok

    keyring.forget(data)  # the old recovery key still opens everything during the window
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        assert book.recover(old_recovery) == old_key and keyring.data_keys(data)[0] == new_key
    keyring.forget(data)
    finished = CliRunner().invoke(cli, ["keys", "rotate", "--user", accounts.ADMIN, "--password-file", str(pw)])
    assert finished.exit_code == 0, finished.output
    keyring.forget(data)
    assert accounts.signed_in(data).data_key == new_key  # the journalled key, not a third one
    with AppStore() as store:
        rotated = [e for e in store.audit_entries() if e.event == "keys_rotated"][-1]
        assert rotated.data["resumed"] is True and store.verify_audit().ok


def test_a_file_moved_before_its_hash_was_recorded_gets_its_hash(data: Path, tmp_path: Path) -> None:
    cid, _recovery, old_key, _pw = _installation(data, tmp_path)
    admin = accounts.signed_in(data, accounts.ADMIN, accounts.ADMIN_PASSWORD)
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        new_key = book.begin_rotation(admin)
    pdf = data / "exports" / "a.pdf"
    sealed.write_file(pdf, PDF, subkey(new_key, sealed.PURPOSE))  # moved, then killed before the row
    done = reencrypt(data)
    assert {u["path"] for u in done.hashes_updated} == {"a.pdf", "a.wav"}
    assert hashlib.sha256(sealed.read_file(pdf, subkey(new_key, sealed.PURPOSE))).digest() == hashlib.sha256(PDF).digest()
    _everything_under(data, new_key, cid)
