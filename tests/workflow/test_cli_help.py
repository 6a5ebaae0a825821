"""Every `clarke-desktop` command and group, at every level, has help text with an example (the
`local-fhir` commands have the same test in tests/local_fhir)."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from clarke_desktop.cli import cli


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


def test_every_command_has_help_with_an_example() -> None:
    missing = [name for name, command in _commands(cli, "clarke-desktop") if "Example" not in (command.help or "")]
    assert missing == []


def test_help_is_printed_for_every_command() -> None:
    runner = CliRunner()
    for name, _command in _commands(cli, "clarke-desktop"):
        result = runner.invoke(cli, [*name.split()[1:], "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout, name
