"""Pack and installed-role manifests (JSON, validated with pydantic).

A pack directory:            PACK/pack.json + PACK/<role>/<files>
An installed role directory: <models dir>/<role>/<files> + <models dir>/<role>/manifest.json
Both record, per file, the relative path, the size in bytes and the sha256.
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


class FileRecord(BaseModel):
    path: str  # POSIX path relative to the role directory
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # mtime (ns) of the installed copy, recorded at install: lets a quick check trust an unchanged
    # file on an account whose hash cache is empty (per-machine install by an administrator).
    installed_mtime_ns: int | None = None

    @field_validator("path")
    @classmethod
    def _relative_and_inside(cls, value: str) -> str:
        p = PurePosixPath(value)
        if not value or p.is_absolute() or ".." in p.parts or "\\" in value or ":" in value:
            raise ValueError(f"unsafe file path {value!r} (must be relative, inside the role directory)")
        if p.name in (ROLE_MANIFEST,) and len(p.parts) == 1:
            raise ValueError(f"file path {value!r} clashes with the role manifest")
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


def read_role_manifest(role_dir: Path) -> RoleManifest:
    path = role_dir / ROLE_MANIFEST
    if not path.is_file():
        raise ModelPackError(
            f"{role_dir} has no {ROLE_MANIFEST}: install models with `clarke-desktop models install PACK`"
        )
    try:
        return RoleManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError) as exc:
        raise ModelPackError(f"installed model manifest {path} is invalid: {exc}") from exc
