"""Verification of installed model files: before use, for display, and on demand.

Every check first requires the role's manifest.json to be signed by a key IT trusts on this
machine (or IT's policy to allow unsigned packs; see `signing`), and the role folder to hold only
the files that manifest lists (a planted extra GGUF or ONNX graph is never picked up by a loader).
Then, per file:

- Before use (`verify_for_use`, run by `locate`, i.e. before any loader opens a file): the full
  sha256 of every file. A file is hashed at most once per process and file state: the digest is
  kept in memory keyed by its path, size, mtime, ctime, inode and device, so a file changed
  mid-session (even with its mtime set back: ctime and the inode still change) is hashed again.
  The on-disk hash cache, which the user can write, plays no part in this decision.
- Quick check, for display only (`verify_role(full=False)`: `models status`, doctor, the app's
  model panel): the size, then the sha256 taken on trust from the per-user hash cache or from the
  install record's modification time. It cannot see a same-size change whose mtime was reset, so
  it never decides whether a model is loaded; its details say "quick check".
- Full check (`models verify`, `verify_role(full=True)`): every file's sha256, refreshing the
  display cache.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from clarke_desktop import paths
from clarke_desktop.files import Progress, file_sha256
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.hashing import HashCache
from clarke_desktop.modelpack.manifest import (
    RESERVED_NAMES,
    ROLE_MANIFEST,
    ROLE_SIGNATURE,
    FileRecord,
    InstallRecord,
    RoleManifest,
    read_install_record,
    read_role_manifest_bytes,
)
from clarke_desktop.modelpack.signing import Policy, check_signature, load_policy

log = logging.getLogger(__name__)

# Per-file statuses.
OK = "ok"
MISSING = "missing"
TRUNCATED = "truncated"
SIZE_CHANGED = "size_changed"
HASH_MISMATCH = "hash_mismatch"
CHANGED_UNVERIFIED = "changed_unverified"
CHANGED_WHILE_HASHING = "changed_while_hashing"
UNLISTED = "unlisted"

Check = Literal["quick", "full", "use"]
CHECK_LABELS: dict[str, str] = {
    "quick": "quick check (size and modification time; not re-hashed, for display only)",
    "full": "full check (every file re-hashed)",
    "use": "verified before use (signature and every file's sha256, once per session)",
}


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
    error: str | None = None  # a problem with the role as a whole (not installed, bad manifest or signature)
    check: Check = "quick"
    signature: str | None = None  # who signed the manifest, or why it is not accepted
    installed_at: str | None = None

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
            "check": self.check,
            "check_label": CHECK_LABELS[self.check],
            "signature": self.signature,
            "reason": self.reason,
            "name": m.name if m else None,
            "precision": m.precision if m else None,
            "min_vram_gb": m.min_vram_gb if m else None,
            "licence": m.licence if m else None,
            "size_bytes": m.total_size() if m else None,
            "installed_at": self.installed_at or (m.installed_at if m else None),
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


# -- where to look -------------------------------------------------------------------------------


def search_bases(policy: Policy | None = None) -> list[Path]:
    """The models folders searched, in order: CLARKE_MODELS_DIR when set, IT's machine folder, and
    the per-user folder only where IT's policy allows per-user packs."""
    policy = policy if policy is not None else load_policy()
    bases: list[Path] = []
    override = paths.models_dir_override()
    if override is not None:
        bases.append(override)
    bases.append(paths.machine_models_dir())
    if policy.allow_user_packs:
        bases.append(paths.user_models_dir())
    return bases


def candidate_dirs(role: str, policy: Policy | None = None) -> list[Path]:
    """Existing directories for `role`, in search order (see `search_bases`)."""
    found: list[Path] = []
    for base in search_bases(policy):
        candidate = base / role
        if candidate.is_dir() and candidate not in found:
            found.append(candidate)
    return found


def ignored_dirs(role: str, policy: Policy | None = None) -> list[Path]:
    """A per-user install of `role` that IT's policy makes the app ignore (for status messages)."""
    policy = policy if policy is not None else load_policy()
    user = paths.user_models_dir() / role
    if policy.allow_user_packs or not user.is_dir() or user in candidate_dirs(role, policy):
        return []
    return [user]


# -- the per-process record of files hashed in full ----------------------------------------------

_FileState = tuple[str, int, int, int, int, int]
_session_lock = threading.Lock()
_session_hashes: dict[_FileState, str] = {}
_path_locks: dict[str, threading.Lock] = {}


def _file_state(key: str, st: os.stat_result) -> _FileState:
    return (key, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def session_sha256(path: Path, progress: Progress | None = None, *, rehash: bool = False) -> str | None:
    """The full sha256 of `path`, computed at most once per process for each state of the file
    (path, size, mtime, ctime, inode, device); None when the file changed while it was hashed.

    Two threads asking for the same file wait for one hash. `rehash` always reads the file again.
    """
    key = str(Path(path).resolve())
    with _session_lock:
        lock = _path_locks.setdefault(key, threading.Lock())
    with lock:
        before = _file_state(key, os.stat(path))
        if not rehash:
            with _session_lock:
                known = _session_hashes.get(before)
            if known is not None:
                return known
        sha = file_sha256(Path(path), progress)
        if _file_state(key, os.stat(path)) != before:
            return None
        with _session_lock:
            _session_hashes[before] = sha
        return sha


def forget_session_hashes() -> None:
    """Drop every digest computed in this process (as a fresh start of the app would)."""
    with _session_lock:
        _session_hashes.clear()


# -- checks --------------------------------------------------------------------------------------


class _Expected(TypedDict):
    """The fields every FileCheck of one manifest record shares."""

    path: Path
    expected_size: int
    expected_sha256: str


def _quick_sha(
    path: Path, rec: FileRecord, st: os.stat_result, cache: HashCache, record: InstallRecord | None
) -> tuple[str | None, str]:
    """(sha256 believed, how) for the display-only quick check; (None, why not) when unknown."""
    cached = cache.get(path)
    if cached is not None:
        return cached, "quick check: sha256 verified earlier, size and mtime unchanged since (not re-hashed)"
    installed_mtime = record.mtime_ns.get(rec.path) if record else rec.installed_mtime_ns
    if installed_mtime is not None and st.st_mtime_ns == installed_mtime:
        return rec.sha256, "quick check: unchanged since installation (size and mtime; not re-hashed)"
    return None, "modified since installation and not re-verified; run `clarke-desktop models verify`"


def _check_file(
    role_dir: Path,
    rec: FileRecord,
    how: Check,
    cache: HashCache,
    record: InstallRecord | None,
    progress: Progress | None,
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
    if how == "quick":
        actual, detail = _quick_sha(path, rec, st, cache, record)
        if actual is None:
            return FileCheck(status=CHANGED_UNVERIFIED, detail=detail, actual_size=st.st_size, **base)
    else:
        actual = session_sha256(path, progress, rehash=how == "full")
        detail = "sha256 verified" if how == "full" else "sha256 verified before use in this session"
        if actual is None:
            return FileCheck(
                status=CHANGED_WHILE_HASHING,
                detail="changed while it was being verified; not used",
                actual_size=st.st_size,
                **base,
            )
        if how == "full" and actual == rec.sha256:
            cache.put(path, actual)  # display cache only
    if actual != rec.sha256:
        return FileCheck(
            status=HASH_MISMATCH,
            detail=f"sha256 {actual} does not match the manifest; the file is corrupted or was tampered "
            "with, reinstall the model pack",
            actual_size=st.st_size,
            actual_sha256=actual,
            **base,
        )
    return FileCheck(status=OK, detail=detail, actual_size=st.st_size, actual_sha256=actual, **base)


def _unlisted(role_dir: Path, manifest: RoleManifest) -> list[FileCheck]:
    """Everything in the role folder that its manifest does not list (the manifest itself, its
    signature and the install record aside): a loader must never find a file nobody verified."""
    listed = {os.path.normcase(f.path) for f in manifest.files} | {
        os.path.normcase(n) for n in RESERVED_NAMES
    }
    found: list[FileCheck] = []
    for dirpath, dirnames, filenames in os.walk(role_dir):
        here = Path(dirpath)
        entries = filenames + [d for d in dirnames if (here / d).is_symlink()]  # linked folders: unlisted
        for name in entries:
            rel = (here / name).relative_to(role_dir).as_posix()
            if os.path.normcase(rel) not in listed:
                found.append(
                    FileCheck(
                        path=here / name,
                        status=UNLISTED,
                        detail="not listed in the model pack's manifest: the folder is not used while it "
                        "is there; remove it or reinstall the model pack",
                        expected_size=0,
                    )
                )
    return sorted(found, key=lambda f: str(f.path))


def _verify(
    role: str, role_dir: Path, how: Check, progress: Progress | None = None, policy: Policy | None = None
) -> VerificationResult:
    result = VerificationResult(role=role, directory=role_dir, full=how != "quick", check=how)
    try:
        data, manifest = read_role_manifest_bytes(role_dir)
    except ModelPackError as exc:
        result.error = str(exc)
        return result
    if manifest.role != role:
        result.error = f"{role_dir / ROLE_MANIFEST} is for role {manifest.role!r}, not {role!r}"
        return result
    signature = check_signature(role_dir / ROLE_MANIFEST, data, role_dir / ROLE_SIGNATURE, policy=policy)
    result.signature = signature.detail
    if not signature.ok:
        result.error = signature.detail
        return result  # nothing the manifest says can be believed: its files are not even looked at
    result.manifest = manifest
    record = read_install_record(role_dir)
    result.installed_at = record.installed_at if record else manifest.installed_at
    result.files = _unlisted(role_dir, manifest)
    cache = HashCache()
    result.files += [_check_file(role_dir, rec, how, cache, record, progress) for rec in manifest.files]
    return result


def verify_directory(
    role: str, role_dir: Path, full: bool = False, progress: Progress | None = None
) -> VerificationResult:
    """The quick (display) or full check of one installed role folder."""
    return _verify(role, role_dir, "full" if full else "quick", progress)


def verify_for_use(role: str, role_dir: Path, progress: Progress | None = None) -> VerificationResult:
    """What must hold before `role_dir`'s files are loaded: a trusted signature, no unlisted file,
    and every file's full sha256 (hashed once per process and file state)."""
    return _verify(role, role_dir, "use", progress)


def verify_role(role: str, full: bool = False, progress: Progress | None = None) -> VerificationResult:
    """Verify the role's installed files: the first directory that verifies wins (as in `locate`).

    `full=False` is the quick check, for display only (see the module docstring). When none
    verifies, the result for the first installed directory is returned (its problems say why); when
    none is installed, `installed` is False.
    """
    policy = load_policy()
    dirs = candidate_dirs(role, policy)
    if not dirs:
        looked = ", ".join(str(b / role) for b in search_bases(policy))
        ignored = ignored_dirs(role, policy)
        note = (
            f"; a per-user install at {ignored[0]} is ignored (IT policy: per-user packs not allowed)"
            if ignored
            else ""
        )
        return VerificationResult(
            role=role, directory=None, full=full, error=f"not installed (looked in {looked}){note}"
        )
    results = []
    for role_dir in dirs:
        result = _verify(role, role_dir, "full" if full else "quick", progress, policy)
        if result.ok:
            return result
        results.append(result)
    return results[0]
