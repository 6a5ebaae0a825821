"""`models install`: verify every file of a pack, then place each role atomically.

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
from clarke_desktop.files import Progress
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.hashing import HashCache, copy_with_sha256
from clarke_desktop.modelpack.manifest import (
    ROLE_MANIFEST,
    FileRecord,
    RoleManifest,
    read_pack_manifest,
    write_json_atomic,
)

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
    """The models directory `install` writes to. CLARKE_MODELS_DIR, when set, always wins."""
    if os.environ.get("CLARKE_MODELS_DIR"):
        return Path(os.environ["CLARKE_MODELS_DIR"])
    scope = scope or default_scope()
    if scope not in SCOPES:
        raise ModelPackError(f"unknown install scope {scope!r}; expected one of {SCOPES}")
    dirs = paths.model_dirs()
    return dirs[-1] if scope == "machine" else dirs[-2]  # see paths.model_dirs: user, then machine


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


def _stage_role(pack_dir: Path, role: RoleManifest, staging: Path, progress: Progress | None) -> RoleManifest:
    records: list[FileRecord] = []
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
        records.append(rec.model_copy(update={"installed_mtime_ns": os.stat(dst).st_mtime_ns}))
    installed = role.model_copy(
        update={"files": records, "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    )
    write_json_atomic(staging / ROLE_MANIFEST, installed)
    return installed


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
    base = Path(dest) if dest else install_base(scope)
    machine_wide = (
        dest is None and not os.environ.get("CLARKE_MODELS_DIR") and (scope or default_scope()) == "machine"
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
        for role in manifest.roles:
            staging = base / f".staging-{role.role}-{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            staged[role.role] = (staging, role)  # registered first so a failure still cleans up
            staged[role.role] = (staging, _stage_role(pack_dir, role, staging, progress))
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
