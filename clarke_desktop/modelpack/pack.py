"""`models pack`: collect each role's files from a staging folder into a verified pack.

Run on a connected machine after downloading the gated weights. Files are taken from
`FROM/<role>/` (every file in it) or, for the GGUF roles, from `FROM/` by the catalogue's file
pattern. Every file is copied and hashed in one pass; the pack is written to `OUT.partial` and
renamed to `OUT` only when complete.

With a signing key (`models pack --sign-key KEYFILE`) each role's manifest.json is signed as
written (`PACK/<role>/manifest.sig`, see `signing`); workstations refuse an unsigned pack unless
IT's policy allows unsigned packs.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop import __version__
from clarke_desktop.files import Progress, atomic_write
from clarke_desktop.modelpack.catalogue import CatalogueEntry, catalogue_entry
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.hashing import copy_with_sha256
from clarke_desktop.modelpack.manifest import (
    PACK_MANIFEST,
    RESERVED_NAMES,
    ROLE_MANIFEST,
    ROLE_SIGNATURE,
    FileRecord,
    PackManifest,
    RoleManifest,
    role_manifest_bytes,
    write_json_atomic,
)
from clarke_desktop.modelpack.signing import sign_manifest

PACKABLE_ROLES = ("asr", "ehr_agent", "letter_writer")
GGUF_MAGIC = b"GGUF"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _role_sources(source: Path, entry: CatalogueEntry) -> list[tuple[Path, str]]:
    """(absolute file, path relative to the role dir) for one role, or [] if the role is absent."""
    role_dir = source / entry.role
    if role_dir.is_dir():
        found = sorted(p for p in role_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        found = [p for p in found if p.relative_to(role_dir).as_posix().lower() not in RESERVED_NAMES]
        pairs = [(p, p.relative_to(role_dir).as_posix()) for p in found]
    else:
        pairs = [
            (p, p.name)
            for p in sorted(source.iterdir())
            if p.is_file() and any(f.required and f.matches(p.name) for f in entry.files)
        ]
    if not pairs:
        return []
    for spec in entry.files:
        if spec.required and not any(spec.matches(Path(rel).name) for _, rel in pairs):
            raise ModelPackError(
                f"{role_dir if role_dir.is_dir() else source}: role {entry.role!r} needs a file matching "
                f"{spec.pattern!r} ({spec.expected_name or spec.description}) and none was found"
            )
    return pairs


def _check_file(entry: CatalogueEntry, src: Path, rel: str, size: int, sha: str) -> None:
    name = Path(rel).name
    if name.lower().endswith(".gguf"):
        with open(src, "rb") as fh:
            if fh.read(4) != GGUF_MAGIC:
                raise ModelPackError(
                    f"{src} is not a GGUF file (bad magic bytes); re-download it (a saved error page "
                    "or an interrupted download looks like this)"
                )
    for spec in entry.files:
        if not spec.matches(name):
            continue
        if spec.size_bytes is not None and spec.size_bytes != size:
            raise ModelPackError(f"{src}: size {size} bytes, the catalogue expects {spec.size_bytes}")
        if spec.sha256 is not None and spec.sha256 != sha:
            raise ModelPackError(f"{src}: sha256 {sha} differs from the catalogue's {spec.sha256}")
        break


def build_pack(
    source: Path,
    out: Path,
    roles: Iterable[str] | None = None,
    progress: Progress | None = None,
    on_file: Callable[[str, str, int], None] | None = None,
    sign_key: Ed25519PrivateKey | None = None,
) -> PackManifest:
    """Collect `roles` (default: every role found in `source`) into the pack directory `out`,
    signing each role's manifest with `sign_key` when given."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise ModelPackError(f"source folder {source} does not exist")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelPackError(f"pack destination {out} already exists and is not empty")
    wanted = tuple(roles) if roles else PACKABLE_ROLES
    for role in wanted:
        if role not in PACKABLE_ROLES:
            raise ModelPackError(f"unknown model role {role!r}; packable roles are {PACKABLE_ROLES}")

    plan = {role: _role_sources(source, catalogue_entry(role)) for role in wanted}
    if roles:
        missing = [r for r, pairs in plan.items() if not pairs]
        if missing:
            raise ModelPackError(f"{source}: no files found for role(s) {', '.join(missing)}")
    plan = {r: pairs for r, pairs in plan.items() if pairs}
    if not plan:
        raise ModelPackError(
            f"{source}: no model files found; expected sub-folders named after roles "
            f"({', '.join(PACKABLE_ROLES)}) or GGUF files named as in models_manifest/"
        )

    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        created = _now()
        manifests: list[RoleManifest] = []
        for role, pairs in plan.items():
            entry = catalogue_entry(role)
            records: list[FileRecord] = []
            for src, rel in pairs:
                dst = partial / role / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                size, sha = copy_with_sha256(src, dst, progress)
                _check_file(entry, src, rel, size, sha)
                records.append(FileRecord(path=rel, size=size, sha256=sha))
                if on_file:
                    on_file(role, rel, size)
            role_manifest = RoleManifest.for_entry(role, entry, records, packed_at=created)
            data = role_manifest_bytes(role_manifest)
            atomic_write(partial / role / ROLE_MANIFEST, data, mode=0o644)
            if sign_key is not None:
                atomic_write(partial / role / ROLE_SIGNATURE, sign_manifest(sign_key, data), mode=0o644)
            manifests.append(role_manifest)
        manifest = PackManifest(
            created_at=created, created_with=f"clarke-desktop {__version__}", roles=manifests
        )
        write_json_atomic(partial / PACK_MANIFEST, manifest)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest
