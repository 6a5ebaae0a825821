"""Accounts as an attacker with the same OS account would try them: guessing, a row added by hand,
a sealed key copied between rows, a disabled account; and IT's way back in with the recovery key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from accounts import FAST

from clarke_desktop.identity import AccountBook, NotAllowed, SignInError
from clarke_desktop.identity.accounts import MAX_FAILURES


@pytest.fixture
def book(tmp_path: Path):
    b = AccountBook(tmp_path / "accounts.sqlite3", kdf=FAST)
    yield b
    b.close()


@pytest.fixture
def admin(book: AccountBook):
    return book.setup("it.admin", "IT Admin", "admin passphrase 1")


def test_sign_in_opens_the_same_data_key_for_every_account(book, admin) -> None:
    book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "clinician pass 1", registration="GMC 7012345")
    chen = book.sign_in("s.chen", "clinician pass 1")
    assert chen.data_key == admin.admin.data_key and len(chen.data_key) == 32
    assert chen.account.signer == "Dr S. Chen (GMC 7012345)" and chen.account.can_sign
    assert not admin.admin.account.can_sign  # IT does not sign letters
    assert "data_key" not in repr(chen) and chen.data_key.hex() not in repr(chen)


def test_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(book, admin) -> None:
    book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "clinician pass 1")
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInError, match="Wrong user name or password"):
            book.sign_in("s.chen", "guess guess guess")
    with pytest.raises(SignInError, match="locked until"):
        book.sign_in("s.chen", "clinician pass 1")  # even the right password, while locked
    book.unlock(admin.admin, "s.chen")
    assert book.sign_in("s.chen", "clinician pass 1").account.name == "s.chen"


def test_an_unknown_name_and_a_wrong_password_read_the_same(book, admin) -> None:
    with pytest.raises(SignInError) as unknown:
        book.sign_in("nobody", "admin passphrase 1")
    with pytest.raises(SignInError) as wrong:
        book.sign_in("it.admin", "not the passphrase")
    assert str(unknown.value) == str(wrong.value)


def test_a_disabled_account_cannot_sign_in(book, admin) -> None:
    book.add(admin.admin, "locum", "Dr L. Ocum", "clinician", "locum passphrase")
    book.set_disabled(admin.admin, "locum", True)
    with pytest.raises(SignInError, match="disabled"):
        book.sign_in("locum", "locum passphrase")


def test_only_an_admin_adds_accounts(book, admin) -> None:
    book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "clinician pass 1")
    chen = book.sign_in("s.chen", "clinician pass 1")
    with pytest.raises(NotAllowed, match="not an administrator"):
        book.add(chen, "friend", "A Friend", "admin", "friend passphrase")
    with pytest.raises(NotAllowed, match="already shown as"):
        book.add(admin.admin, "s.chen2", "dr s. chen", "clinician", "clinician pass 2")


def test_an_account_added_by_editing_the_file_opens_nothing(tmp_path: Path, book, admin) -> None:
    """The attacker copies the admin's row under a new name with a password hash they know: the
    sealed keys are bound to the row's name, so the data key does not open."""
    book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "clinician pass 1")
    db = sqlite3.connect(tmp_path / "accounts.sqlite3")
    row = db.execute("SELECT * FROM accounts WHERE name = 's.chen'").fetchone()
    cols = [d[0] for d in db.execute("SELECT * FROM accounts").description]
    forged = dict(zip(cols, row, strict=True)) | {
        "name": "mallory",
        "display_name": "Mallory",
        "role": "admin",
    }
    db.execute(f"INSERT INTO accounts ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
               list(forged.values()))  # fmt: skip
    db.commit()
    db.close()
    with pytest.raises(SignInError, match="does not open"):
        book.sign_in("mallory", "clinician pass 1")


def test_the_recovery_key_restores_access_and_rotation_replaces_it(book, admin) -> None:
    book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "clinician pass 1")
    with pytest.raises(SignInError, match="does not open"):
        book.recover("AAAA-" * 12 + "AAAA")
    data_key = book.recover(admin.recovery_key)
    assert data_key == admin.admin.data_key
    book.reset_password(data_key, "it.admin", "forgotten and reset")  # the admin forgot
    assert book.sign_in("it.admin", "forgotten and reset").data_key == data_key
    from clarke_desktop.identity.keys import new_recovery_key

    new = new_recovery_key()
    signed = book.sign_in("it.admin", "forgotten and reset")
    new_key = book.begin_rotation(signed)
    assert book.finish_rotation(signed, new) == new_key != data_key
    assert book.recover(new) == new_key
    with pytest.raises(SignInError):
        book.recover(admin.recovery_key)  # the old key no longer opens anything
    assert book.sign_in("s.chen", "clinician pass 1").data_key == new_key  # no password needed to reseal


def test_short_passwords_and_a_second_setup_are_refused(book, admin) -> None:
    with pytest.raises(NotAllowed, match="already set up"):
        book.setup("other", "Other", "another passphrase")
    with pytest.raises(SignInError, match="at least"):
        book.add(admin.admin, "s.chen", "Dr S. Chen", "clinician", "short")


def test_the_account_book_is_private(tmp_path: Path, book, admin) -> None:
    assert (tmp_path / "accounts.sqlite3").stat().st_mode & 0o777 == 0o600
