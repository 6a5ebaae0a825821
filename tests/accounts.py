"""Accounts for tests: a set-up installation (an IT admin and the demo clinician) in a data folder,
with the clinician signed in headless through CLARKE_USER / CLARKE_PASSWORD_FILE.

The argon2id cost is lowered for speed through AccountBook's own parameter (stored with each
account, as the product stores its own): the product never reads a weaker cost from anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarke_desktop.identity import AccountBook, Unlocked
from clarke_desktop.identity.keys import KdfParams

FAST = KdfParams(time_cost=1, memory_kib=8 * 1024, parallelism=1)
ADMIN, ADMIN_PASSWORD = "it.admin", "it admin passphrase"
CLINICIAN, CLINICIAN_NAME, CLINICIAN_PASSWORD = "s.chen", "Dr S. Chen", "clinician passphrase"
REGISTRATION = "GMC 7012345"


def set_up(data_dir: Path, *, clinician_name: str = CLINICIAN_NAME) -> tuple[Unlocked, str]:
    """The installation's accounts in `data_dir`; returns the admin's session and the recovery key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with AccountBook(data_dir / "accounts.sqlite3", kdf=FAST) as book:
        done = book.setup(ADMIN, "IT Admin", ADMIN_PASSWORD)
        book.add(
            done.admin, CLINICIAN, clinician_name, "clinician", CLINICIAN_PASSWORD, registration=REGISTRATION
        )
    return done.admin, done.recovery_key


def sign_in_env(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str = CLINICIAN,
                password: str = CLINICIAN_PASSWORD) -> Path:  # fmt: skip
    """CLARKE_USER and CLARKE_PASSWORD_FILE for `name` (the file private, outside the data folder)."""
    pw = folder / f"{name}.pw"
    pw.write_text(password + "\n", encoding="utf-8")
    pw.chmod(0o600)
    monkeypatch.setenv("CLARKE_USER", name)
    monkeypatch.setenv("CLARKE_PASSWORD_FILE", str(pw))
    return pw


def signed_in(data_dir: Path, name: str = CLINICIAN, password: str = CLINICIAN_PASSWORD) -> Unlocked:
    with AccountBook(data_dir / "accounts.sqlite3", kdf=FAST) as book:
        return book.sign_in(name, password)
