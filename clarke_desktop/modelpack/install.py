"""`models install`: verify every file of a pack, then place each role atomically.

First each role's manifest must carry a signature by a key IT trusts on this machine (or IT's
policy must allow unsigned packs) and agree with pack.json; nothing is copied otherwise.

All roles are first copied into hidden staging folders beside their destination (same filesystem)
and hashed while copying; only when every file of every role matches the pack manifest are the
staging folders renamed into place. A truncated or tampered file aborts the whole install, names
the file, and leaves what was installed before untouched. Placing is all-or-nothing across roles
too: each previous install is moved aside, not deleted, until every role is in place; if one role
cannot be placed (a file locked on Windows), the roles already swapped are put back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from clarke_desktop import paths
from clarke_desktop.files import Progress, atomic_write
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.hashing import HashCache, copy_with_sha256
from clarke_desktop.modelpack.manifest import (
    INSTALL_RECORD,
    ROLE_MANIFEST,
    ROLE_SIGNATURE,
    InstallRecord,
    RoleManifest,
    parse_role_manifest,
    read_pack_manifest,
    role_manifest_bytes,
    write_json_atomic,
)
from clarke_desktop.modelpack.signing import check_signature, load_policy, load_trusted_keys

log = logging.getLogger(__name__)

SCOPES = ("machine", "user")


def is_administrator() -> bool:
    if os.name == "nt":
        import ctypes

        try:
            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except OSError:
            return False
    return os.geteuid() == 0


def default_scope() -> str:
    """Per-machine when run by an administrator (IT), otherwise per-user."""
    return "machine" if is_administrator() else "user"


def install_base(scope: str | None = None) -> Path:
    """The models directory `install` writes to. CLARKE_MODELS_DIR, when set, always wins.

    A per-user install is refused unless IT's policy allows per-user packs: the app would ignore it.
    """
    override = paths.models_dir_override()
    if override is not None:
        return override
    scope = scope or default_scope()
    if scope not in SCOPES:
        raise ModelPackError(f"unknown install scope {scope!r}; expected one of {SCOPES}")
    if scope == "machine":
        return paths.machine_models_dir()
    policy = load_policy()
    if not policy.allow_user_packs:
        raise ModelPackError(
            "per-user model packs are not allowed on this machine (the app would ignore one): an "
            "administrator installs the pack for every user (`sudo clarke-desktop models install PACK`, "
            f"or an elevated prompt on Windows), or allows per-user packs in {policy.source}"
        )
    return paths.user_models_dir()


def _make_readable(root: Path) -> None:
    """Per-machine models must be readable by every clinician account (POSIX only)."""
    if os.name != "posix":
        return
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


def _signed_roles(
    pack_dir: Path, listed: list[RoleManifest]
) -> list[tuple[RoleManifest, bytes, bytes | None]]:
    """(manifest, its exact bytes, its signature file or None) for every role of the pack, once
    each role's signature verifies under this machine's trusted keys and policy, and agrees with
    pack.json. Raises, naming the role, before anything is copied."""
    trusted, policy = load_trusted_keys(), load_policy()
    names = [r.role for r in listed]
    if len(set(names)) != len(names):
        raise ModelPackError(f"{pack_dir / 'pack.json'} lists a role twice ({', '.join(names)})")
    roles: list[tuple[RoleManifest, bytes, bytes | None]] = []
    for role in listed:
        manifest_path = pack_dir / role.role / ROLE_MANIFEST
        signature_path = pack_dir / role.role / ROLE_SIGNATURE
        try:
            data = manifest_path.read_bytes()
        except FileNotFoundError:
            data = role_manifest_bytes(role)  # a pack made before signed manifests: never signed
        check = check_signature(manifest_path, data, signature_path, trusted, policy)
        if not check.ok:
            raise ModelPackError(f"role {role.role}: {check.detail}. Nothing was installed.")
        signed = parse_role_manifest(data, manifest_path)
        if signed.role != role.role or signed.model_dump() != role.model_dump():
            raise ModelPackError(
                f"{pack_dir / 'pack.json'} does not agree with {manifest_path} for role {role.role}: "
                "the pack was changed after it was built. Nothing was installed."
            )
        signature = signature_path.read_bytes() if check.signed else None
        roles.append((signed, data, signature))
    return roles


def _stage_role(
    pack_dir: Path,
    role: RoleManifest,
    staging: Path,
    progress: Progress | None,
    manifest_bytes: bytes,
    signature: bytes | None,
) -> RoleManifest:
    mtimes: dict[str, int] = {}
    for rec in role.files:
        src = pack_dir / role.role / rec.path
        if not src.is_file():
            raise ModelPackError(
                f"{src}: missing from the pack (listed in pack.json); the pack is incomplete"
            )
        actual_size = src.stat().st_size
        if actual_size < rec.size:
            raise ModelPackError(
                f"{src}: truncated ({actual_size} of {rec.size} bytes); copy the pack again from its source"
            )
        if actual_size > rec.size:
            raise ModelPackError(
                f"{src}: size {actual_size} bytes, pack.json says {rec.size}; the file was altered"
            )
        dst = staging / rec.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        size, sha = copy_with_sha256(src, dst, progress)
        if size != rec.size or sha != rec.sha256:
            raise ModelPackError(
                f"{src}: sha256 {sha} does not match pack.json ({rec.sha256}); the file is corrupted or "
                "was tampered with. Nothing was installed."
            )
        mtimes[rec.path] = os.stat(dst).st_mtime_ns
    # The manifest and its signature exactly as signed; what install learnt beside them, unsigned.
    atomic_write(staging / ROLE_MANIFEST, manifest_bytes, mode=0o644)
    if signature is not None:
        atomic_write(staging / ROLE_SIGNATURE, signature, mode=0o644)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json_atomic(staging / INSTALL_RECORD, InstallRecord(installed_at=now, mtime_ns=mtimes))
    return role.model_copy(update={"installed_at": now})


def _swap_in(staging: Path, final: Path) -> Path | None:
    """Rename staging to `final`; the previous install is moved aside (returned), not deleted.
    Windows cannot rename over a directory, hence the move."""
    old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}") if final.exists() else None
    if old is not None:
        final.rename(old)
    try:
        staging.rename(final)
    except OSError:
        if old is not None:
            old.rename(final)  # put the previous install back
        raise
    return old


def _swap_back(final: Path, old: Path | None) -> None:
    """Undo `_swap_in`: the new install goes, the previous one (if any) returns."""
    failed = final.with_name(f".failed-{final.name}-{uuid.uuid4().hex[:8]}")
    final.rename(failed)
    if old is not None:
        old.rename(final)
    shutil.rmtree(failed, ignore_errors=True)


def install_pack(
    pack_dir: Path,
    scope: str | None = None,
    dest: Path | None = None,
    progress: Progress | None = None,
    on_role: Callable[[str, Path], None] | None = None,
) -> dict[str, Path]:
    """Verify and install every role in the pack; returns {role: installed directory}."""
    pack_dir = Path(pack_dir)
    manifest = read_pack_manifest(pack_dir)
    if not manifest.roles:
        raise ModelPackError(f"{pack_dir}: the pack lists no roles")
    signed_roles = _signed_roles(pack_dir, manifest.roles)
    base = Path(dest) if dest else install_base(scope)
    machine_wide = (
        dest is None and paths.models_dir_override() is None and (scope or default_scope()) == "machine"
    )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelPackError(
            f"cannot create the models directory {base}: {exc}; run as an administrator for a "
            "per-machine install, or use --scope user"
        ) from exc
    needed = sum(r.total_size() for r in manifest.roles)
    free = shutil.disk_usage(base).free
    if needed > free:
        raise ModelPackError(f"{base}: {needed / 1e9:.2f} GB needed, only {free / 1e9:.2f} GB free")

    staged: dict[str, tuple[Path, RoleManifest]] = {}
    try:
        for role, data, signature in signed_roles:
            staging = base / f".staging-{role.role}-{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            staged[role.role] = (staging, role)  # registered first so a failure still cleans up
            staged[role.role] = (staging, _stage_role(pack_dir, role, staging, progress, data, signature))
        swapped: list[tuple[str, Path, Path | None]] = []  # (role, final, previous install moved aside)
        try:
            for role_name, (staging, _) in staged.items():
                if machine_wide:
                    _make_readable(staging)
                final = base / role_name
                try:
                    swapped.append((role_name, final, _swap_in(staging, final)))
                except OSError as exc:
                    raise ModelPackError(
                        f"cannot replace {final}: {exc}; close Clarke Desktop in every session (Windows "
                        "keeps loaded model files locked) and run the install again; nothing was changed"
                    ) from exc
        except BaseException:
            for _, final, old in reversed(swapped):
                try:
                    _swap_back(final, old)
                except OSError as undo_error:  # keep the first error; say what IT must move back
                    log.error("could not put back the previous %s (kept in %s): %s", final, old, undo_error)
            raise
        installed: dict[str, Path] = {}
        cache = HashCache()
        for role_name, final, old in swapped:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            installed[role_name] = final
            for rec in staged[role_name][1].files:
                cache.put(final / rec.path, rec.sha256)
            log.info("installed model role %s into %s", role_name, final)
            if on_role:
                on_role(role_name, final)
        return installed
    finally:
        for staging, _ in staged.values():
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
