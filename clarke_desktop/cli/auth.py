"""Signing in from the command line: the same accounts as the window, never a password in argv.

Who: `--user NAME` or the environment variable CLARKE_USER. The password: the first line of
`--password-file FILE` or of the file named by CLARKE_PASSWORD_FILE; else one line on standard input
(a prompt that does not echo, on a terminal).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from clarke_desktop.identity import SignInError, Unlocked

if TYPE_CHECKING:
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

F = TypeVar("F", bound=Callable[..., Any])

SIGN_IN_HELP = (
    "Sign in with --user NAME and --password-file FILE (or the environment variables CLARKE_USER and "
    "CLARKE_PASSWORD_FILE); without a file the password is read as one line on standard input."
)


def sign_in_options(command: F) -> F:
    command = click.option(
        "--password-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File whose first line is the password (default: $CLARKE_PASSWORD_FILE, else standard input).",
    )(command)
    return click.option("--user", "user", help="Account to sign in as (default: $CLARKE_USER).")(command)


def read_password(password_file: Path | None, *, prompt: str = "Password") -> str:
    """The first line of `password_file`, else one line of standard input (not echoed on a terminal)."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise click.ClickException(f"cannot read the password file {password_file}: {e.strerror}") from e
        if not lines or not lines[0]:
            raise click.ClickException(f"the password file {password_file} is empty")
        return lines[0]
    if sys.stdin is not None and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, err=True))
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip("\r\n"):
        raise click.ClickException("no password: give --password-file FILE or one line on standard input")
    return line.rstrip("\r\n")


def password_file_from(option: Path | None) -> Path | None:
    env = os.environ.get("CLARKE_PASSWORD_FILE")
    return option or (Path(env) if env else None)


def sign_in(user: str | None, password_file: Path | None) -> Unlocked:
    """The account the command acts as, or a ClickException saying how to sign in."""
    from clarke_desktop.session.identity import Identity

    name = user or os.environ.get("CLARKE_USER")
    if not name:
        raise click.ClickException(f"not signed in. {SIGN_IN_HELP}")
    with Identity() as identity:
        if identity.needs_setup():
            raise click.ClickException(
                "Clarke is not set up yet: create the first administrator with "
                "`clarke-desktop users add NAME --role admin --display-name TEXT` (password on stdin)."
            )
        return _signed_in(identity, name, password_file)


def open_installation(user: str | None, password_file: Path | None) -> Unlocked | None:
    """For a command that opens the stores: a sign-in when the installation has accounts (its data
    is encrypted and opens only then); None on an installation without accounts."""
    from clarke_desktop.session.identity import Identity

    with Identity() as identity:
        if identity.needs_setup():
            return None
        name = user or os.environ.get("CLARKE_USER")
        if not name:
            raise click.ClickException(f"not signed in. {SIGN_IN_HELP}")
        return _signed_in(identity, name, password_file)


def unlock_for_local_fhir(user: str | None, password_file: Path | None) -> None:
    """The `local_fhir.unlock` entry point: `local-fhir` run on Clarke's own (encrypted) store signs
    in as the app's commands do; an installation without accounts needs nothing."""
    from clarke_desktop.session.identity import Identity
    from local_fhir import observers

    name = user or os.environ.get("CLARKE_USER")
    with Identity() as identity:
        if name and not identity.needs_setup():
            account = _signed_in(identity, name, password_file).account.name
            observers.register(_audit_fhir_writes(account))


def _audit_fhir_writes(actor: str) -> Callable[[Path, dict[str, Any]], None]:
    """An observer writing each `local-fhir` write to Clarke's own store into Clarke's audit log
    (the app database beside it), under the account that signed in."""

    def observe(db_path: Path, what: dict[str, Any]) -> None:
        from clarke_desktop.identity import keyring
        from clarke_desktop.store import AppStore, AuditEvent

        if keyring.key_for(db_path, "fhir-db") is None:
            return  # a store IT keeps elsewhere: not Clarke's, not in its log
        from clarke_desktop import paths

        with AppStore(db_path.parent / paths.app_db_path().name) as store:
            store.record_event(AuditEvent.FHIR_WRITTEN, actor=actor, store=db_path.name, **what)

    return observe


def _signed_in(identity: Identity, name: str, password_file: Path | None) -> Unlocked:
    try:
        return identity.sign_in(name, read_password(password_file_from(password_file)))
    except SignInError as e:
        raise click.ClickException(e.user_text) from e


@contextlib.contextmanager
def service_for(signed_in: Unlocked | None) -> Iterator[ConsultationService]:
    """The application service for a command, as `signed_in` (None: an installation without
    accounts), closed afterwards; its errors become the command's message and exit status 1."""
    from clarke_desktop.errors import ClarkeError
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    with Identity() as identity:
        try:
            service = ConsultationService(signed_in=signed_in, identity=identity if signed_in else None)
        except ClarkeError as exc:
            raise click.ClickException(exc.user_text) from exc
        try:
            yield service
        except ClarkeError as exc:
            raise click.ClickException(exc.user_text) from exc
        finally:
            service.close()
