"""`clarke-desktop users …` and `keys …`: IT's account and key actions (each audited)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from clarke_desktop.cli.auth import SIGN_IN_HELP, read_password, sign_in, sign_in_options
from clarke_desktop.errors import ClarkeError
from clarke_desktop.identity import ROLES, Account, Role

if TYPE_CHECKING:
    from clarke_desktop.session.identity import Identity


def _identity() -> Identity:
    from clarke_desktop.session.identity import Identity

    return Identity()


def _row(a: Account) -> dict[str, object]:
    return {
        "name": a.name, "display_name": a.display_name, "role": a.role, "registration": a.registration,
        "disabled": a.disabled, "locked_until": a.locked_until,
    }  # fmt: skip


USERS_HELP = f"""Local accounts: add, list, disable, enable, reset-password, unlock.

The first `users add` on a new installation needs no sign-in: it creates the first administrator
(its role must be admin) and prints the IT recovery key once, on a line containing "recovery key".
Every later command is authorised by an administrator's sign-in. New passwords are read as one line
on standard input (at least 10 characters), never from the command line.

{SIGN_IN_HELP}

\b
Examples:
  echo 'long passphrase here' | clarke-desktop users add it.admin --role admin --display-name "IT Admin"
  echo 'another passphrase' | CLARKE_USER=it.admin CLARKE_PASSWORD_FILE=admin.pw \\
      clarke-desktop users add s.chen --role clinician --display-name "Dr Sarah Chen" --registration "GMC 7012345"
"""


@click.group(help=USERS_HELP)
def users() -> None:
    pass


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(ROLES), required=True, help="clinician (signs letters) or admin (IT)."
)
@click.option(
    "--display-name", required=True, help="The name on letters and in the audit, e.g. 'Dr Sarah Chen'."
)
@click.option("--registration", help="GMC/NMC number printed with the signature, e.g. 'GMC 7012345'.")
@sign_in_options
def add(name: str, role: str, display_name: str, registration: str | None, user: str | None,
        password_file: Path | None) -> None:  # fmt: skip
    """Add an account; its password is read as one line on standard input.

    \b
    Example:
      echo 'clinician passphrase' | clarke-desktop users add s.chen --role clinician \\
          --display-name "Dr Sarah Chen" --registration "GMC 7012345" --user it.admin --password-file admin.pw
    """
    with _identity() as identity:
        try:
            if identity.needs_setup():
                if role != "admin":
                    raise click.ClickException("the first account must be an administrator: --role admin")
                done = identity.set_up(name, display_name, read_password(None, prompt="New password"),
                                       registration=registration)  # fmt: skip
                click.echo(f"Created administrator {name}.")
                click.echo(
                    f"IT recovery key (shown once; keep it offline, see the IT guide): {done.recovery_key}"
                )
                return
            admin = sign_in(user, password_file)
            account = identity.add(admin, name, display_name, cast(Role, role),
                                   read_password(None, prompt="New password"), registration=registration)  # fmt: skip
        except ClarkeError as e:
            raise click.ClickException(e.user_text) from e
    click.echo(f"Added {account.role} {account.name} ({account.signer}).")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@sign_in_options
def list_(as_json: bool, user: str | None, password_file: Path | None) -> None:
    """The accounts, their roles and whether they are disabled or locked out.

    \b
    Example:
      clarke-desktop users list --user it.admin --password-file admin.pw --json
    """
    admin = sign_in(user, password_file)
    with _identity() as identity:
        try:
            admin.require_admin()
        except ClarkeError as e:
            raise click.ClickException(e.user_text) from e
        rows = [_row(a) for a in identity.accounts()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = (
            "disabled"
            if r["disabled"]
            else f"locked until {r['locked_until']}"
            if r["locked_until"]
            else "active"
        )
        click.echo(
            f"{r['name']:<20} {r['role']:<10} {state:<12} {r['display_name']} {r['registration'] or ''}".rstrip()
        )


def _admin_action(action: str):  # type: ignore[no-untyped-def]
    @click.argument("name")
    @sign_in_options
    def command(name: str, user: str | None, password_file: Path | None) -> None:
        admin = sign_in(user, password_file)
        with _identity() as identity:
            try:
                if action == "disable":
                    identity.set_disabled(admin, name, True)
                elif action == "enable":
                    identity.set_disabled(admin, name, False)
                elif action == "unlock":
                    identity.unlock(admin, name)
                else:
                    if password_file is None:
                        raise click.ClickException(
                            "reset-password reads the new password on standard input, so sign in with "
                            "--password-file (or CLARKE_PASSWORD_FILE)"
                        )
                    identity.reset_password(admin, name, read_password(None, prompt="New password"))
            except ClarkeError as e:
                raise click.ClickException(e.user_text) from e
        click.echo(f"{name}: {action} done.")

    return command


def _help(text: str, example: str) -> str:
    return f"{text}\n\n\b\nExample:\n  {example}"


users.command(
    "disable",
    help=_help(
        "Disable an account: it can no longer sign in.",
        "clarke-desktop users disable locum --user it.admin --password-file admin.pw",
    ),
)(_admin_action("disable"))
users.command(
    "enable",
    help=_help(
        "Enable a disabled account again.",
        "clarke-desktop users enable locum --user it.admin --password-file admin.pw",
    ),
)(_admin_action("enable"))
users.command(
    "unlock",
    help=_help(
        "Clear an account's lockout after too many wrong passwords.",
        "clarke-desktop users unlock s.chen --user it.admin --password-file admin.pw",
    ),
)(_admin_action("unlock"))
users.command("reset-password", help=_help(
    "Set a new password (one line on standard input); the admin signs in with a password file.",
    "echo 'new passphrase here' | clarke-desktop users reset-password s.chen --user it.admin --password-file admin.pw",
))(_admin_action("reset-password"))  # fmt: skip


@click.group()
def keys() -> None:
    """The keys that protect patient data: rotate, recover. See the IT guide, "Recovery key".

    \b
    Example:
      clarke-desktop keys rotate --user it.admin --password-file admin.pw
    """


@keys.command("rotate")
@sign_in_options
def rotate(user: str | None, password_file: Path | None) -> None:
    """A new data key for all patient data, and a new IT recovery key (printed once; the old one
    stops working). Needs an administrator's sign-in; close Clarke on this computer first.

    Both databases and every encrypted file in the data folder are re-encrypted under the new key,
    every account gets it, and the old key is kept sealed under the new one (a backup made before
    still opens). Safe to interrupt: run it again to finish; meanwhile every sign-in opens both
    keys and completes the re-encryption. Audited ("keys_rotated").

    \b
    Example:
      clarke-desktop keys rotate --user it.admin --password-file admin.pw
    """
    admin = sign_in(user, password_file)
    with _identity() as identity:
        try:
            _, recovery = identity.rotate(admin)
        except ClarkeError as e:
            raise click.ClickException(e.user_text) from e
    click.echo("Patient data re-encrypted under a new data key.")
    click.echo(f"New IT recovery key (shown once; the old one no longer works): {recovery}")


@keys.command("recover")
@click.option("--recovery-key-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="File holding the IT recovery key printed at set-up (or at the last rotation).")  # fmt: skip
@click.option("--user", "name", required=True, help="The account to give a new password (one line on stdin).")
def recover(recovery_key_file: Path, name: str) -> None:
    """Regain access with the IT recovery key: sets a new password for an existing account.

    \b
    Example:
      echo 'new admin passphrase' | clarke-desktop keys recover --recovery-key-file recovery.txt --user it.admin
    """
    text = recovery_key_file.read_text(encoding="utf-8").strip()
    with _identity() as identity:
        try:
            account = identity.recover(text, name, read_password(None, prompt="New password"))
        except ClarkeError as e:
            raise click.ClickException(e.user_text) from e
    click.echo(f"{account.name} has a new password; the data opens with it.")


COMMANDS = [users, keys]
