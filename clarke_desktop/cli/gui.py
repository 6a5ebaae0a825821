"""`clarke-desktop gui`: open the window (the same as `clarke-desktop` with no command)."""

from __future__ import annotations

import sys

import click


@click.command("gui")
@click.option(
    "--quit-after", type=int, default=None, hidden=True, help="Quit after MS milliseconds (smoke tests)."
)
def gui(quit_after: int | None) -> None:
    """Open the Clarke Desktop window.

    Example:

        clarke-desktop gui
    """
    from clarke_desktop.gui.app import run_gui

    sys.exit(run_gui(["--quit-after", str(quit_after)] if quit_after is not None else []))


COMMANDS = [gui]
