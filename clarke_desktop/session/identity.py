"""Accounts as the app and the commands use them: first start, sign-in, re-authentication, and
IT's account and key actions, each one audited under the account that did it.

Qt-free and shared: the window's sign-in, lock and sign-off dialogs and the `users` / `keys`
commands call these same methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clarke_desktop import paths
from clarke_desktop.errors import ClarkeError
from clarke_desktop.identity import Account, AccountBook, Role, Setup, SignInError, Unlocked
from clarke_desktop.identity.keys import new_recovery_key
from clarke_desktop.store import AppStore
from clarke_desktop.store.audit import AuditEvent


class SetUpFileError(ClarkeError):
    """The non-interactive set-up file is missing a part or cannot be read."""


class Identity:
    def __init__(self, accounts_path: Path | None = None) -> None:
        self.book = AccountBook(accounts_path or paths.accounts_path())

    def close(self) -> None:
        self.book.close()

    def __enter__(self) -> Identity:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def needs_setup(self) -> bool:
        return self.book.is_empty()

    def _audit(self, event: str, actor: str, **data: Any) -> None:
        with AppStore() as store:
            store.record_event(event, actor=actor, **data)

    # --- the clinician --------------------------------------------------------------------------

    def set_up(
        self, name: str, display_name: str, password: str, *, registration: str | None = None
    ) -> Setup:
        """The first account (an admin) and the IT recovery key, shown once by the caller."""
        done = self.book.setup(name, display_name, password, registration=registration)
        self._audit(AuditEvent.SET_UP, name, account=name, role="admin", key_id=self.book.key_id())
        return done

    def set_up_from_file(self, path: Path) -> Setup:
        """The non-interactive set-up (IT's automation, screenshots, tests): a JSON file
        {"admin": {"name", "display_name", "password"}, "clinicians": [{"name", "display_name",
        "registration", "password"}], "recovery_key_file": PATH}. The recovery key is written to
        `recovery_key_file` (created 0600, never overwritten); delete the set-up file afterwards."""
        import json
        import os

        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            admin, clinicians, key_file = spec["admin"], spec.get("clinicians", []), Path(spec["recovery_key_file"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SetUpFileError(
                f"The set-up file {path} cannot be used ({e}): see the IT guide, \"Accounts\", for its format."
            ) from e
        done = self.set_up(admin["name"], admin["display_name"], admin["password"])
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(done.recovery_key + "\n")
        for c in clinicians:
            self.add(done.admin, c["name"], c["display_name"], "clinician", c["password"],
                     registration=c.get("registration"))  # fmt: skip
        return done

    def sign_in(self, name: str, password: str) -> Unlocked:
        before = self.book.get(name.strip())
        unlocked = self.book.sign_in(name, password)
        self._finish_reencrypting()
        # Failed tries cannot be written to the audit before someone signs in (the log is the
        # patient data's, and opens with the key): the account book keeps them until then.
        missed = before.failures if before is not None else 0
        failed = self.book.failed_sign_ins()
        with AppStore() as store:
            # Every failed try since the last sign-in, under the name that was typed, then this one.
            for _id, tried, at, reason in failed:
                store.record_event(AuditEvent.SIGN_IN_FAILED, actor=tried, tried_at=at, reason=reason)
            store.record_event(
                AuditEvent.SIGNED_IN, actor=unlocked.account.name, role=unlocked.account.role, failed_before=missed
            )
        if failed:
            self.book.forget_failed_sign_ins(failed[-1][0])
        return unlocked

    def reauthenticate(self, unlocked: Unlocked, password: str, *, purpose: str) -> None:
        """The signed-in account's password asked again before a consequential act."""
        self.book.verify(unlocked, password)
        self._audit(AuditEvent.REAUTHENTICATED, unlocked.account.name, purpose=purpose)

    def locked(self, unlocked: Unlocked, *, reason: str) -> None:
        self._audit(AuditEvent.SESSION_LOCKED, unlocked.account.name, reason=reason)

    # --- IT -------------------------------------------------------------------------------------

    def accounts(self) -> list[Account]:
        return self.book.accounts()

    def add(self, by: Unlocked, name: str, display_name: str, role: Role, password: str,
            *, registration: str | None = None) -> Account:  # fmt: skip
        account = self.book.add(by, name, display_name, role, password, registration=registration)
        self._audit(AuditEvent.ACCOUNT_ADDED, by.account.name, account=name, role=role,
                    registration=account.registration)  # fmt: skip
        return account

    def set_disabled(self, by: Unlocked, name: str, disabled: bool) -> Account:
        account = self.book.set_disabled(by, name, disabled)
        self._audit(AuditEvent.ACCOUNT_DISABLED if disabled else AuditEvent.ACCOUNT_ENABLED, by.account.name,
                    account=name)  # fmt: skip
        return account

    def unlock(self, by: Unlocked, name: str) -> Account:
        account = self.book.unlock(by, name)
        self._audit(AuditEvent.ACCOUNT_UNLOCKED, by.account.name, account=name)
        return account

    def reset_password(self, by: Unlocked, name: str, password: str) -> Account:
        account = self.book.reset_password(by.data_key, name, password, by=by)
        self._audit(AuditEvent.PASSWORD_RESET, by.account.name, account=name)
        return account

    def recover(self, recovery_key: str, name: str, password: str) -> Account:
        """IT's way back in: the recovery key sets a new password for an existing account."""
        data_key = self.book.recover(recovery_key)
        self._finish_reencrypting()
        account = self.book.reset_password(data_key, name, password)
        self._audit(AuditEvent.KEYS_RECOVERED, "recovery key", account=name)
        return account

    def rotate(self, by: Unlocked) -> tuple[Unlocked, str]:
        """A new data key for all patient data and a new recovery key (the old one stops working).

        The new key is journalled first; both databases and every sealed file are re-encrypted
        under it; then every account and the new recovery key get it in one transaction, and the
        old key is kept (sealed under the new) for what it sealed elsewhere (a backup). A rotation
        killed part-way is finished by the next `keys rotate`; until then every sign-in opens both
        keys and completes the re-encryption. Returns the admin's session and the recovery key."""
        from clarke_desktop.identity.accounts import key_id
        from clarke_desktop.session.rotation import reencrypt

        by.require_admin()
        resumed = self.book.rotation_pending()
        new = self.book.begin_rotation(by)
        moved = reencrypt(self.book.path.parent)
        recovery = new_recovery_key()
        self.book.finish_rotation(by, recovery)
        self._audit(
            AuditEvent.KEYS_ROTATED, by.account.name, key_id=key_id(new), previous_key_id=key_id(by.data_key),
            resumed=resumed is not None, databases=moved.databases, files=moved.files,
            hashes_updated=moved.hashes_updated,
        )  # fmt: skip
        return by, recovery

    def _finish_reencrypting(self) -> None:
        """A rotation was interrupted: move what is still under the old key before anything opens."""
        if self.book.rotation_pending() is None:
            return
        from clarke_desktop.session.rotation import reencrypt

        reencrypt(self.book.path.parent)


def require_signer(unlocked: Unlocked) -> Account:
    """Only an enabled clinician account signs letters (an admin is IT, not a clinician)."""
    if not unlocked.account.can_sign:
        raise SignInError(
            f"{unlocked.account.name} is an {unlocked.account.role} account and cannot sign letters: "
            "sign in as a clinician."
        )
    return unlocked.account
