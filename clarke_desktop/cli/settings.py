"""IT's settings commands: the servers patient data may go to, the idle lock (an administrator's, audited)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clarke_desktop.cli.auth import service_for, sign_in, sign_in_options


@click.group("settings")
def settings() -> None:
    """Settings only an administrator may change: where patient data may go, the idle lock.

    \b
    Example:
      clarke-desktop settings servers --user it.admin --model-server https://llm.trust.nhs.uk:8443
      clarke-desktop settings servers --user it.admin --fhir-server https://fhir.trust.nhs.uk/R4
      clarke-desktop settings servers --user it.admin --model-server none --fhir-server none
      clarke-desktop settings idle-lock 3 --user it.admin
    """


@settings.command("servers")
@click.option("--model-server", default=None,
              help="An OpenAI-compatible server (https://, or http:// on this computer) for every model "
                   "role; 'none' for the models installed here. Left out: unchanged.")  # fmt: skip
@click.option("--fhir-server", default=None,
              help="The hospital's FHIR R4 server (https://, or http:// on this computer); 'none' for "
                   "the local record. Left out: unchanged.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the servers in use as JSON.")
@sign_in_options
def servers(
    model_server: str | None, fhir_server: str | None, as_json: bool, user: str | None, password_file: Path | None
) -> None:
    """Show or set the model and FHIR servers (an administrator's sign-in; audited).

    Servers written into settings.json by hand are not used: Clarke records the servers an
    administrator sets here (or in the window's Settings) in its keyed audit log, and at each start
    uses the servers in the file only if they still match. A model server must answer
    GET /v1/models before it is saved.

    \b
    Exit status: 0 shown or saved; 1 refused (not an administrator, an address that would send
    data unencrypted over the network, a model server that does not answer); 2 usage.
    JSON (--json): {"model_server": URL or null, "fhir_server": URL or null}.

    Example:

        clarke-desktop settings servers --user it.admin --fhir-server https://fhir.trust.nhs.uk/R4
    """
    with service_for(sign_in(user, password_file)) as service:
        if model_server is not None or fhir_server is not None:
            current = service.servers()
            service.set_servers(
                model_server=_choice(model_server, current["model_server"]),
                fhir_server=_choice(fhir_server, current["fhir_server"]),
            )
        now = service.servers()
    if as_json:
        click.echo(json.dumps(now, indent=2))
    else:
        click.echo(f"Model server: {now['model_server'] or 'none (the models installed here)'}")
        click.echo(f"FHIR server: {now['fhir_server'] or 'none (the local record)'}")


@settings.command("idle-lock")
@click.argument("minutes", type=click.FloatRange(0, 240))
@sign_in_options
def idle_lock(minutes: float, user: str | None, password_file: Path | None) -> None:
    """Lock an unattended window after MINUTES without input (0: never; default 5). An
    administrator's sign-in; audited. A value written into settings.json by hand is not used.

    \b
    Exit status: 0 saved; 1 refused (not an administrator); 2 usage (out of 0-240).

    Example:

        clarke-desktop settings idle-lock 3 --user it.admin --password-file admin.pw
    """
    with service_for(sign_in(user, password_file)) as service:
        service.set_idle_lock(minutes)
    click.echo(f"Idle lock: {'never' if minutes == 0 else f'{minutes:g} minutes'}.")


def _choice(given: str | None, current: str | None) -> str | None:
    if given is None:
        return current
    return None if given.strip().lower() == "none" else given


COMMANDS = [settings]
