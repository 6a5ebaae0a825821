"""`clarke-desktop doctor`: workstation readiness checks (thin wrapper over clarke_desktop.doctor)."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (for IT tooling).")
@click.option(
    "--verify-hashes", is_flag=True, help="Re-hash every model file (sha256) instead of the quick check."
)
def doctor(as_json: bool, verify_hashes: bool) -> None:
    """Check this workstation: OS, CPU, RAM, GPU/driver, CUDA runtimes, models, microphone, data.

    Exit status 1 when any check fails (warnings exit 0). Example: clarke-desktop doctor --json
    """
    from clarke_desktop.doctor import report, report_text, run_checks

    checks = run_checks(verify_hashes=verify_hashes)
    result = report(checks)
    click.echo(json.dumps(result, indent=2) if as_json else report_text(checks))
    sys.exit(1 if result["status"] == "fail" else 0)


COMMANDS = [doctor]
