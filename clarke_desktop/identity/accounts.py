"""Local user accounts: who may open Clarke's data, in what role, and under what name letters go out.

The account book is its own small SQLite file beside the data (`accounts.sqlite3`, 0600). It holds
no patient data and no usable key: password hashes (argon2id), each account's sealed key pair and
its sealed copy of the data key (see keys.py). Someone who edits the file can at most lock accounts
out or reset a failure counter; a row they add opens nothing, because only a holder of the data key
(an admin signed in, or the recovery key) can seal the data key to a new account.

Sign-in is behind one method (`sign_in`) returning an `Unlocked` (the account and the data key), so
an OS-account or smartcard sign-in can later be another way to produce one (see the IT guide).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clarke_desktop.errors import ClarkeError
from clarke_desktop.identity import keyring, keys

Role = Literal["clinician", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "admin")
MAX_FAILURES = 5  # then the account waits LOCKOUT (or an admin unlocks it)
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- the audit's actor and the signature
    role TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
    registration TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    password_hash TEXT NOT NULL,
    kdf TEXT NOT NULL,
    salt BLOB NOT NULL,
    public_key BLOB NOT NULL,
    sealed_private BLOB NOT NULL,
    sealed_data_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT
);
-- Failed sign-ins wait here until the next sign-in opens the audit log (which needs the key).
CREATE TABLE IF NOT EXISTS failed_sign_ins (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);
-- Data keys retired by rotations, each sealed under the current data key: what they sealed before
-- the rotation reached it (or a copy restored from a backup) still opens.
CREATE TABLE IF NOT EXISTS key_history (
    key_id TEXT PRIMARY KEY,
    sealed_key BLOB NOT NULL,
    retired_at TEXT NOT NULL
);
-- A rotation in progress: the new data key, sealed under the one every account still holds. While
-- it is here every sign-in opens both, writes with the new one and re-encrypts what remains.
CREATE TABLE IF NOT EXISTS rotation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    new_key_id TEXT NOT NULL,
    sealed_new_key BLOB NOT NULL,
    started_at TEXT NOT NULL,
    started_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vault (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_id TEXT NOT NULL,
    recovery_sealed_data_key BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


class SignInError(ClarkeError):
    """Sign-in refused; the message says what to do (never which of name or password was wrong)."""


class NotAllowed(ClarkeError):
    """The signed-in account may not do this (an admin's action, or the account is disabled)."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    display_name: str
    role: Role
    registration: str | None = None
    disabled: bool = False
    locked_until: str | None = None
    failures: int = 0

    @property
    def signer(self) -> str:
        """How the account signs a letter: its name and, for clinicians, the registration."""
        return f"{self.display_name} ({self.registration})" if self.registration else self.display_name

    @property
    def can_sign(self) -> bool:
        return self.role == "clinician" and not self.disabled


@dataclass(frozen=True, slots=True)
class Unlocked:
    """A signed-in account and the data key its password opened. Held in memory only."""

    account: Account
    data_key: bytes = b""

    def __repr__(self) -> str:  # never print the key
        return f"Unlocked({self.account.name!r}, {self.account.role!r})"

    def require_admin(self) -> None:
        if self.account.role != "admin":
            raise NotAllowed(f"{self.account.name} is not an administrator: ask IT.")


@dataclass(frozen=True, slots=True)
class Setup:
    admin: Unlocked
    recovery_key: str  # shown once; never stored


def _now() -> datetime:
    return datetime.now(UTC)


def _aad(purpose: str, name: str) -> bytes:
    return f"clarke:{purpose}:{name}".encode()


def key_id(data_key: bytes) -> str:
    """A fingerprint that names the data key without revealing it (which key sealed what)."""
    return keys.subkey(data_key, "key-id").hex()[:16]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise SignInError(f"Choose a password of at least {MIN_PASSWORD} characters.")


class AccountBook:
    def __init__(self, path: Path, *, kdf: keys.KdfParams | None = None) -> None:
        self.path = path
        self._kdf = kdf or keys.KdfParams()
        self._hasher = PasswordHasher(
            time_cost=self._kdf.time_cost, memory_cost=self._kdf.memory_kib, parallelism=self._kdf.parallelism
        )
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        if fresh and os.name == "posix":
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        if os.name == "posix":
            os.chmod(path, 0o600)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AccountBook:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- reading ------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return int(self._db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]) == 0

    def accounts(self) -> list[Account]:
        return [_account(r) for r in self._db.execute("SELECT * FROM accounts ORDER BY name")]

    def get(self, name: str) -> Account | None:
        row = self._db.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return _account(row) if row else None

    def key_id(self) -> str | None:
        row = self._db.execute("SELECT key_id FROM vault WHERE id = 1").fetchone()
        return str(row[0]) if row else None

    # --- first start ------------------------------------------------------------------------------

    def setup(self, name: str, display_name: str, password: str, *, registration: str | None = None) -> Setup:
        """The first account (an admin), the data key and the IT recovery key. Only on an empty book."""
        if not self.is_empty():
            raise NotAllowed("Clarke is already set up: an administrator adds further accounts.")
        check_password(password)
        data_key = keys.new_data_key()
        recovery = keys.new_recovery_key()
        sealed = keys.seal(keys.recovery_key_bytes(recovery), data_key, _aad("recovery", ""))
        with self._tx() as db:
            db.execute(
                "INSERT INTO vault (id, key_id, recovery_sealed_data_key, created_at) VALUES (1, ?, ?, ?)",
                (key_id(data_key), sealed, _now().isoformat()),
            )
            self._insert(db, name, display_name, "admin", registration, password, data_key, created_by=None)
        account = self.get(name)
        assert account is not None
        self.open_keys(data_key)
        return Setup(Unlocked(account, data_key), recovery)

    # --- signing in -------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str) -> Unlocked:
        """The account and its data key, or SignInError (wrong name or password, locked, disabled).
        Each failure counts; MAX_FAILURES in a row lock the account for LOCKOUT."""
        row = self._db.execute("SELECT * FROM accounts WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            self._hasher.hash(password)  # the same time as a real check: no hint that the name is unknown
            self._note_failure(name, "unknown user name")
            raise SignInError("Wrong user name or password.")
        account = _account(row)
        if account.disabled:
            self._note_failure(name, "account disabled")
            raise SignInError("This account is disabled: ask IT.")
        now = _now()
        if account.locked_until and datetime.fromisoformat(account.locked_until) > now:
            until = datetime.fromisoformat(account.locked_until).astimezone().strftime("%H:%M")
            self._note_failure(name, "account locked out")
            raise SignInError(
                f"Too many wrong passwords: this account is locked until {until}, or until IT unlocks it."
            )
        try:
            self._hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            self._failed(account, now)
            self._note_failure(name, "wrong password")
            raise SignInError("Wrong user name or password.") from None
        try:
            data_key = self._open(row, password)
        except keys.WrongKey:
            raise SignInError(
                "This account's key does not open (the account book was changed): ask IT to reset the password."
            ) from None
        with self._tx() as db:
            db.execute(
                "UPDATE accounts SET failures = 0, locked_until = NULL WHERE name = ?", (account.name,)
            )
        self.open_keys(data_key)  # this installation's stores now open
        return Unlocked(_account(row), data_key)

    def verify(self, unlocked: Unlocked, password: str) -> None:
        """Re-authentication of the signed-in account (at sign-off, for an approval, to unlock)."""
        again = self.sign_in(unlocked.account.name, password)
        if again.data_key != unlocked.data_key:
            raise SignInError("This account no longer opens the same data: sign in again.")

    def recover(self, recovery_key: str) -> bytes:
        """The data key from the IT recovery key (to reset an admin's password, or rotate)."""
        row = self._db.execute("SELECT recovery_sealed_data_key FROM vault WHERE id = 1").fetchone()
        if row is None:
            raise SignInError("Clarke is not set up yet: there is nothing to recover.")
        try:
            data_key = keys.unseal(keys.recovery_key_bytes(recovery_key), row[0], _aad("recovery", ""))
            self.open_keys(data_key)
            return data_key
        except keys.WrongKey:
            raise SignInError("That recovery key does not open this installation's data.") from None

    # --- administration -------------------------------------------------------------------------

    def add(
        self,
        by: Unlocked,
        name: str,
        display_name: str,
        role: Role,
        password: str,
        *,
        registration: str | None = None,
    ) -> Account:
        by.require_admin()
        _valid_name(name)
        if role not in ROLES:
            raise NotAllowed(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
        if self.get(name) is not None:
            raise NotAllowed(f"There is already an account called {name}.")
        if any(a.display_name.lower() == display_name.strip().lower() for a in self.accounts()):
            raise NotAllowed(
                f"Another account is already shown as {display_name!r}: add a middle initial or title."
            )
        check_password(password)
        with self._tx() as db:
            self._insert(
                db, name, display_name, role, registration, password, by.data_key, created_by=by.account.name
            )
        account = self.get(name)
        assert account is not None
        return account

    def set_disabled(self, by: Unlocked, name: str, disabled: bool) -> Account:
        by.require_admin()
        if disabled and name == by.account.name:
            raise NotAllowed("You cannot disable your own account.")
        self._require(name)
        with self._tx() as db:
            db.execute("UPDATE accounts SET disabled = ? WHERE name = ?", (int(disabled), name))
        return self._require(name)

    def unlock(self, by: Unlocked, name: str) -> Account:
        by.require_admin()
        self._require(name)
        with self._tx() as db:
            db.execute("UPDATE accounts SET failures = 0, locked_until = NULL WHERE name = ?", (name,))
        return self._require(name)

    def reset_password(
        self, data_key: bytes, name: str, password: str, *, by: Unlocked | None = None
    ) -> Account:
        """A new password (and key pair) for `name`, its data key sealed again. Needs the data key:
        an admin's (`by`), or the recovery key's (`recover`)."""
        if by is not None:
            by.require_admin()
        account = self._require(name)
        check_password(password)
        with self._tx() as db:
            db.execute("DELETE FROM accounts WHERE name = ?", (name,))
            row_by = by.account.name if by is not None else "recovery key"
            self._insert(db, name, account.display_name, account.role, account.registration, password, data_key,
                         created_by=row_by, disabled=account.disabled)  # fmt: skip
        return self._require(name)

    # --- data key rotation ----------------------------------------------------------------------

    def open_keys(self, data_key: bytes) -> None:
        """Put the installation's keys in this process's keyring from the data key an account (or
        the recovery key) holds: the current one (a rotation's new key while one is in progress)
        and every retired one."""
        current, older = self._keys_from(data_key)
        keyring.remember(self.path.parent, current, older)

    def _keys_from(self, data_key: bytes) -> tuple[bytes, list[bytes]]:
        history = keys.subkey(data_key, "key-history")
        older = [
            keys.unseal(history, row[1], _aad("key-history", row[0]))
            for row in self._db.execute("SELECT key_id, sealed_key FROM key_history ORDER BY retired_at DESC")
        ]
        pending = self._db.execute("SELECT new_key_id, sealed_new_key FROM rotation WHERE id = 1").fetchone()
        if pending is None:
            return data_key, older
        new = keys.unseal(keys.subkey(data_key, "rotation"), pending[1], _aad("rotation", pending[0]))
        return new, [data_key, *older]

    def rotation_pending(self) -> tuple[str, str] | None:
        """(when, by whom) a rotation was begun and not yet finished, else None."""
        row = self._db.execute("SELECT started_at, started_by FROM rotation WHERE id = 1").fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def begin_rotation(self, by: Unlocked) -> bytes:
        """The new data key, journalled (sealed under the current one) before anything is
        re-encrypted, so a crash part-way leaves both keys to every sign-in. Resumes one begun."""
        by.require_admin()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM rotation WHERE id = 1").fetchone() is None:
                new = keys.new_data_key()
                sealed = keys.seal(keys.subkey(by.data_key, "rotation"), new, _aad("rotation", key_id(new)))
                db.execute(
                    "INSERT INTO rotation (id, new_key_id, sealed_new_key, started_at, started_by) "
                    "VALUES (1, ?, ?, ?, ?)",
                    (key_id(new), sealed, _now().isoformat(), by.account.name),
                )
        self.open_keys(by.data_key)
        current, _older = self._keys_from(by.data_key)
        return current

    def finish_rotation(self, by: Unlocked, recovery_key: str) -> bytes:
        """Once every store and file is under the new key: every account, and a new recovery key,
        get the new key; the old one joins the history (sealed under the new); the journal goes.
        One transaction: before it commits everyone still signs in with the old key (and both open)."""
        by.require_admin()
        new, older = self._keys_from(by.data_key)
        if new == by.data_key:
            raise NotAllowed("No key rotation is in progress.")
        history = keys.subkey(new, "key-history")
        with self._tx() as db:
            for row in db.execute("SELECT name, public_key FROM accounts").fetchall():
                sealed = keys.seal_to(row["public_key"], new, _aad("data-key", row["name"]))
                db.execute("UPDATE accounts SET sealed_data_key = ? WHERE name = ?", (sealed, row["name"]))
            db.execute("DELETE FROM key_history")
            for old in older:
                db.execute(
                    "INSERT INTO key_history (key_id, sealed_key, retired_at) VALUES (?, ?, ?)",
                    (key_id(old), keys.seal(history, old, _aad("key-history", key_id(old))), _now().isoformat()),
                )
            sealed_recovery = keys.seal(keys.recovery_key_bytes(recovery_key), new, _aad("recovery", ""))
            db.execute(
                "UPDATE vault SET key_id = ?, recovery_sealed_data_key = ?, created_at = ? WHERE id = 1",
                (key_id(new), sealed_recovery, _now().isoformat()),
            )
            db.execute("DELETE FROM rotation")
        keyring.remember(self.path.parent, new, older)
        return new

    # --- internals --------------------------------------------------------------------------------

    def _require(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise NotAllowed(f"There is no account called {name}.")
        return account

    def _insert(self, db: sqlite3.Connection, name: str, display_name: str, role: str, registration: str | None,
                password: str, data_key: bytes, *, created_by: str | None, disabled: bool = False) -> None:  # fmt: skip
        salt = os.urandom(16)
        private, public = keys.new_keypair()
        kek = keys.password_key(password, salt, self._kdf)
        db.execute(
            "INSERT INTO accounts (name, display_name, role, registration, disabled, password_hash, kdf, salt, "
            "public_key, sealed_private, sealed_data_key, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, display_name.strip() or name, role, (registration or "").strip() or None, int(disabled),
             self._hasher.hash(password), self._kdf.as_text(), salt, public,
             keys.seal(kek, private, _aad("private", name)),
             keys.seal_to(public, data_key, _aad("data-key", name)), _now().isoformat(), created_by),
        )  # fmt: skip

    def _open(self, row: sqlite3.Row, password: str) -> bytes:
        kek = keys.password_key(password, row["salt"], keys.KdfParams.from_text(row["kdf"]))
        private = keys.unseal(kek, row["sealed_private"], _aad("private", row["name"]))
        return keys.open_sealed(private, row["sealed_data_key"], _aad("data-key", row["name"]))

    def _note_failure(self, name: str, reason: str) -> None:
        """Keep a failed try for the audit log (the name as typed, cut to 64 characters)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO failed_sign_ins(name, at, reason) VALUES (?, ?, ?)",
                (name.strip()[:64], _now().isoformat(), reason),
            )

    def failed_sign_ins(self) -> list[tuple[int, str, str, str]]:
        """Failed tries not yet in the audit log: (id, name as typed, when, why)."""
        rows = self._db.execute("SELECT id, name, at, reason FROM failed_sign_ins ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def forget_failed_sign_ins(self, up_to_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM failed_sign_ins WHERE id <= ?", (up_to_id,))

    def _failed(self, account: Account, now: datetime) -> None:
        failures = account.failures + 1
        until = (now + LOCKOUT).isoformat() if failures >= MAX_FAILURES else None
        with self._tx() as db:
            db.execute(
                "UPDATE accounts SET failures = ?, locked_until = COALESCE(?, locked_until) WHERE name = ?",
                (0 if until else failures, until, account.name),
            )


def _valid_name(name: str) -> None:
    if not name or not name.replace(".", "").replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise NotAllowed("A user name is letters, digits, '.', '-' or '_' (at most 64).")


def _account(row: sqlite3.Row) -> Account:
    return Account(
        name=row["name"], display_name=row["display_name"], role=row["role"], registration=row["registration"],
        disabled=bool(row["disabled"]), locked_until=row["locked_until"], failures=int(row["failures"]),
    )  # fmt: skip
