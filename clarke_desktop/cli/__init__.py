"""`clarke-desktop` command line. With no arguments it starts the GUI on the embedded defaults.

Each subsystem keeps its commands in its own module here (thin: parse, call the library, map
errors to a message and a non-zero exit). A module exports `COMMANDS` (top-level commands) and/or
`MODELS_COMMANDS` (added under `clarke-desktop models`).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from clarke_desktop import __version__

_COMMAND_MODULES = ("models", "asr", "llm", "workflow", "safety", "doctor", "gui", "users", "settings")


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clarke-desktop")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Clarke Desktop: offline clinical documentation assistant.

    Run with no command to open the app.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)
    if ctx.invoked_subcommand is None:
        from clarke_desktop.gui.app import run_gui

        sys.exit(run_gui([]))


@cli.group()
def models() -> None:
    """Model packs: keygen, pack, trust, install, status, verify, export MedASR.

    Packs must be signed by IT: create a key once (`models keygen`), sign each pack
    (`models pack --sign-key KEYFILE`) and trust the public key on each workstation, as
    administrator (`models trust KEYFILE.pub`). Trusted keys live in IT's machine configuration
    folder, trusted_keys/ (/etc/ClarkeDesktop on Linux, %ProgramData%\\Clarke\\ClarkeDesktop on
    Windows); model-policy.json beside it may allow unsigned packs ("allow_unsigned_packs": true) or
    per-user packs ("allow_user_packs": true), both refused by default. IT's machine models folder is
    searched first (after CLARKE_MODELS_DIR when set). Before a model is first used in a session
    the app checks the signature and hashes every file in full; `status` is a quick check.

    \b
    Example:
      clarke-desktop models status
      clarke-desktop models verify --json
    """


# Importing the submodule clarke_desktop.cli.models rebinds the package attribute `models` to that
# module, so _register keeps its own reference to the click group.
_models_group = models


def _register() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"clarke_desktop.cli.{name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)
        for command in getattr(module, "MODELS_COMMANDS", ()):
            _models_group.add_command(command)


_register()


def main() -> None:
    cli()
