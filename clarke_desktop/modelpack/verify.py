"""Verification of installed model files before they are loaded.

Quick check (every load): the role's manifest.json exists, each file exists with the recorded
size, and its sha256 is known good either from the per-user hash cache (keyed by path, valid while
size and mtime are unchanged) or because its mtime still equals the one recorded at install.
Full check (on demand, `clarke-desktop models verify`): re-hash every file and refresh the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from clarke_desktop import paths
from clarke_desktop.files import Progress, file_sha256
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.hashing import HashCache
from clarke_desktop.modelpack.manifest import FileRecord, RoleManifest, read_role_manifest

# Per-file statuses.
OK = "ok"
MISSING = "missing"
TRUNCATED = "truncated"
SIZE_CHANGED = "size_changed"
HASH_MISMATCH = "hash_mismatch"
CHANGED_UNVERIFIED = "changed_unverified"


@dataclass(frozen=True)
class FileCheck:
    path: Path
    status: str
    detail: str
    expected_size: int
    actual_size: int | None = None
    expected_sha256: str | None = None
    actual_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class VerificationResult:
    role: str
    directory: Path | None
    full: bool
    manifest: RoleManifest | None = None
    files: list[FileCheck] = field(default_factory=list)
    error: str | None = None  # a problem with the role as a whole (not installed, bad manifest)

    @property
    def installed(self) -> bool:
        return self.directory is not None

    @property
    def ok(self) -> bool:
        return self.error is None and self.manifest is not None and all(f.ok for f in self.files)

    @property
    def problems(self) -> list[str]:
        found = [self.error] if self.error else []
        return found + [f"{f.path}: {f.detail}" for f in self.files if not f.ok]

    @property
    def reason(self) -> str:
        return "; ".join(self.problems) if self.problems else "verified"

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "role": self.role,
            "installed": self.installed,
            "directory": str(self.directory) if self.directory else None,
            "ok": self.ok,
            "full_hash": self.full,
            "reason": self.reason,
            "name": m.name if m else None,
            "precision": m.precision if m else None,
            "min_vram_gb": m.min_vram_gb if m else None,
            "licence": m.licence if m else None,
            "size_bytes": m.total_size() if m else None,
            "installed_at": m.installed_at if m else None,
            "files": [
                {
                    "path": str(f.path),
                    "status": f.status,
                    "detail": f.detail,
                    "expected_size": f.expected_size,
                    "actual_size": f.actual_size,
                    "expected_sha256": f.expected_sha256,
                    "actual_sha256": f.actual_sha256,
                }
                for f in self.files
            ],
        }


def candidate_dirs(role: str) -> list[Path]:
    """Existing directories for `role`, in search order (override, per-user, per-machine)."""
    found: list[Path] = []
    for base in paths.model_dirs():
        candidate = base / role
        if candidate.is_dir() and candidate not in found:
            found.append(candidate)
    return found


class _Expected(TypedDict):
    """The fields every FileCheck of one manifest record shares."""

    path: Path
    expected_size: int
    expected_sha256: str


def _check_file(
    role_dir: Path, rec: FileRecord, full: bool, cache: HashCache, progress: Progress | None
) -> FileCheck:
    path = role_dir / rec.path
    base: _Expected = {"path": path, "expected_size": rec.size, "expected_sha256": rec.sha256}
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileCheck(status=MISSING, detail="missing; reinstall the model pack", **base)
    if st.st_size < rec.size:
        return FileCheck(
            status=TRUNCATED,
            detail=f"truncated ({st.st_size} of {rec.size} bytes); reinstall the model pack",
            actual_size=st.st_size,
            **base,
        )
    if st.st_size != rec.size:
        return FileCheck(
            status=SIZE_CHANGED,
            detail=f"size {st.st_size} bytes, expected {rec.size}; the file was altered, reinstall the model pack",
            actual_size=st.st_size,
            **base,
        )
    actual: str | None
    if full:
        actual = file_sha256(path, progress)
        if actual == rec.sha256:
            cache.put(path, actual)
    else:
        actual = cache.get(path)
        if actual is None:
            if rec.installed_mtime_ns is not None and st.st_mtime_ns == rec.installed_mtime_ns:
                return FileCheck(
                    status=OK,
                    detail="unchanged since installation (size and mtime)",
                    actual_size=st.st_size,
                    **base,
                )
            return FileCheck(
                status=CHANGED_UNVERIFIED,
                detail="modified since installation and not re-verified; run `clarke-desktop models verify`",
                actual_size=st.st_size,
                **base,
            )
    if actual != rec.sha256:
        return FileCheck(
            status=HASH_MISMATCH,
            detail=f"sha256 {actual} does not match the manifest; the file is corrupted or was tampered "
            "with, reinstall the model pack",
            actual_size=st.st_size,
            actual_sha256=actual,
            **base,
        )
    return FileCheck(
        status=OK,
        detail="sha256 verified" if full else "sha256 verified earlier (cached, unchanged since)",
        actual_size=st.st_size,
        actual_sha256=actual,
        **base,
    )


def verify_directory(
    role: str, role_dir: Path, full: bool = False, progress: Progress | None = None
) -> VerificationResult:
    result = VerificationResult(role=role, directory=role_dir, full=full)
    try:
        manifest = read_role_manifest(role_dir)
    except ModelPackError as exc:
        result.error = str(exc)
        return result
    if manifest.role != role:
        result.error = f"{role_dir / 'manifest.json'} is for role {manifest.role!r}, not {role!r}"
        return result
    result.manifest = manifest
    cache = HashCache()
    result.files = [_check_file(role_dir, rec, full, cache, progress) for rec in manifest.files]
    return result


def verify_role(role: str, full: bool = False, progress: Progress | None = None) -> VerificationResult:
    """Verify the role's installed files: the first directory that verifies wins (as in `locate`).

    When none verifies, the result for the first installed directory is returned (its problems
    say why); when none is installed, `installed` is False.
    """
    dirs = candidate_dirs(role)
    if not dirs:
        return VerificationResult(
            role=role,
            directory=None,
            full=full,
            error=f"not installed (looked in {', '.join(str(b / role) for b in paths.model_dirs())})",
        )
    results = []
    for role_dir in dirs:
        result = verify_directory(role, role_dir, full=full, progress=progress)
        if result.ok:
            return result
        results.append(result)
    return results[0]
