"""Pack and installed-role manifests (JSON, validated with pydantic).

A pack directory:            PACK/pack.json + PACK/<role>/<files> + PACK/<role>/manifest.json (+ .sig)
An installed role directory: <models dir>/<role>/<files> + manifest.json + manifest.sig + install.json
Both record, per file, the relative path, the size in bytes and the sha256. A role's manifest.json
is written once, at pack time, and signed as those exact bytes (`signing`); `install` copies it and
its signature verbatim and keeps what it learns at install time (when, each file's mtime) in the
unsigned install.json, which only the quick display check reads. pack.json is the pack's index: it
repeats every role manifest, and `install` refuses a pack whose pack.json disagrees with them.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field, field_validator

from clarke_desktop.files import atomic_write
from clarke_desktop.modelpack.catalogue import CatalogueEntry
from clarke_desktop.modelpack.errors import ModelPackError

PACK_FORMAT = "clarke-desktop-model-pack"
PACK_MANIFEST = "pack.json"
ROLE_MANIFEST = "manifest.json"
ROLE_SIGNATURE = "manifest.sig"
INSTALL_RECORD = "install.json"
# Files of a role folder that are not model files (never listed in, nor packed as, its files).
RESERVED_NAMES = (ROLE_MANIFEST, ROLE_SIGNATURE, INSTALL_RECORD)


class FileRecord(BaseModel):
    path: str  # POSIX path relative to the role directory
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Written by installs before signed manifests (install.json holds it now); read by the quick check.
    installed_mtime_ns: int | None = None

    @field_validator("path")
    @classmethod
    def _relative_and_inside(cls, value: str) -> str:
        p = PurePosixPath(value)
        if not value or p.is_absolute() or ".." in p.parts or "\\" in value or ":" in value:
            raise ValueError(f"unsafe file path {value!r} (must be relative, inside the role directory)")
        if len(p.parts) == 1 and p.name.lower() in RESERVED_NAMES:
            raise ValueError(f"file path {value!r} clashes with the role manifest or its signature")
        return value


INSTALLABLE_ROLES = ("asr", "ehr_agent", "letter_writer")


class RoleManifest(BaseModel):
    schema_version: int = 1
    role: str
    name: str
    runtime: str
    precision: str
    min_vram_gb: float
    licence: str
    licence_url: str
    notice: str
    files: list[FileRecord]
    packed_at: str | None = None
    installed_at: str | None = None

    @field_validator("files")
    @classmethod
    def _lists_files(cls, value: list[FileRecord]) -> list[FileRecord]:
        # A manifest listing nothing verified trivially, and the loader then took any *.gguf it
        # found beside it, unverified.
        if not value:
            raise ValueError("the manifest lists no files: nothing in this model pack could be verified")
        return value

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        # The role names a directory: never let a manifest choose an arbitrary path.
        if value not in INSTALLABLE_ROLES:
            raise ValueError(f"unknown model role {value!r}; expected one of {INSTALLABLE_ROLES}")
        return value

    @classmethod
    def for_entry(
        cls,
        role: str,
        entry: CatalogueEntry,
        files: list[FileRecord],
        *,
        packed_at: str | None = None,
        installed_at: str | None = None,
    ) -> RoleManifest:
        """The manifest of `role`'s files, describing the model as its catalogue entry does."""
        return cls(
            role=role,
            name=entry.name,
            runtime=entry.runtime,
            precision=entry.precision,
            min_vram_gb=entry.min_vram_gb,
            licence=entry.licence.name,
            licence_url=entry.licence.url,
            notice=entry.licence.notice,
            files=files,
            packed_at=packed_at,
            installed_at=installed_at,
        )

    def total_size(self) -> int:
        return sum(f.size for f in self.files)


class PackManifest(BaseModel):
    format: str = PACK_FORMAT
    schema_version: int = 1
    created_at: str
    created_with: str
    roles: list[RoleManifest]

    @field_validator("format")
    @classmethod
    def _is_pack(cls, value: str) -> str:
        if value != PACK_FORMAT:
            raise ValueError(f"not a Clarke Desktop model pack (format {value!r})")
        return value


def write_json_atomic(path: Path, model: BaseModel) -> None:
    # manifests are not secret: the directory decides access
    atomic_write(path, model.model_dump_json(indent=2) + "\n", mode=0o644)


def read_pack_manifest(pack_dir: Path) -> PackManifest:
    path = pack_dir / PACK_MANIFEST
    if not path.is_file():
        raise ModelPackError(f"{pack_dir} is not a model pack: {PACK_MANIFEST} is missing")
    try:
        return PackManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError) as exc:
        raise ModelPackError(f"pack manifest {path} is invalid: {exc}") from exc


def role_manifest_bytes(manifest: RoleManifest) -> bytes:
    """The bytes written, and signed, as a role's manifest.json (install-time fields left out)."""
    clean = manifest.model_copy(
        update={
            "installed_at": None,
            "files": [f.model_copy(update={"installed_mtime_ns": None}) for f in manifest.files],
        }
    )
    return (clean.model_dump_json(indent=2, exclude_none=True) + "\n").encode()


def parse_role_manifest(data: bytes, where: Path) -> RoleManifest:
    try:
        return RoleManifest.model_validate(json.loads(data))
    except ValueError as exc:
        raise ModelPackError(f"model manifest {where} is invalid: {exc}") from exc


def read_role_manifest_bytes(role_dir: Path) -> tuple[bytes, RoleManifest]:
    """The exact bytes of `role_dir/manifest.json` (what its signature covers) and their meaning."""
    path = role_dir / ROLE_MANIFEST
    if not path.is_file():
        raise ModelPackError(
            f"{role_dir} has no {ROLE_MANIFEST}: install models with `clarke-desktop models install PACK`"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelPackError(f"cannot read the model manifest {path}: {exc}") from exc
    return data, parse_role_manifest(data, path)


def read_role_manifest(role_dir: Path) -> RoleManifest:
    return read_role_manifest_bytes(role_dir)[1]


class InstallRecord(BaseModel):
    """Unsigned facts about an installed role, for the quick display check only: when it was
    installed and each file's modification time (ns) just after it was placed."""

    installed_at: str
    mtime_ns: dict[str, int] = Field(default_factory=dict)


def read_install_record(role_dir: Path) -> InstallRecord | None:
    try:
        return InstallRecord.model_validate(json.loads((role_dir / INSTALL_RECORD).read_bytes()))
    except (OSError, ValueError):
        return None  # only costs the quick check its shortcut
