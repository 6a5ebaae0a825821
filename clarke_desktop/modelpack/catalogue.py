"""The model catalogue: what each role needs, read from the JSON files in `models_manifest/`.

The catalogue is data, not code, so IT can read it and the bundle can ship it as is. It is found
(in order) via CLARKE_MODELS_MANIFEST_DIR, inside a PyInstaller bundle, or beside the package in a
source checkout.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from clarke_desktop.modelpack.errors import ModelPackError


class CatalogueFile(BaseModel):
    pattern: str
    expected_name: str | None = None
    description: str = ""
    required: bool = True
    approx_size_bytes: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    sha256_status: str = "recorded at pack time"

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name.lower(), self.pattern.lower())


class Licence(BaseModel):
    name: str
    url: str
    notice: str


class Source(BaseModel):
    where: str
    steps: list[str] = Field(default_factory=list)


class CatalogueEntry(BaseModel):
    schema_version: int = 1
    role: str
    name: str
    purpose: str = ""
    runtime: str
    format: str
    precision: str
    parameters: str = ""
    min_vram_gb: float
    recommended_vram_gb: float | None = None
    cpu_fallback: bool = True
    cpu_note: str = ""
    licence: Licence
    source: Source
    files: list[CatalogueFile]

    def approx_size_bytes(self) -> int:
        return sum(f.size_bytes or f.approx_size_bytes or 0 for f in self.files)


def manifest_dir() -> Path:
    """Where the catalogue JSON files are."""
    override = os.environ.get("CLARKE_MODELS_MANIFEST_DIR")
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "models_manifest"
    return Path(__file__).resolve().parents[2] / "models_manifest"


@functools.cache
def _load(directory: Path) -> dict[str, CatalogueEntry]:
    if not directory.is_dir():
        raise ModelPackError(
            f"model catalogue not found at {directory}; the installation is incomplete (reinstall "
            "Clarke Desktop or set CLARKE_MODELS_MANIFEST_DIR)"
        )
    entries: dict[str, CatalogueEntry] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            entry = CatalogueEntry.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, OSError) as exc:
            raise ModelPackError(f"model catalogue file {path} is invalid: {exc}") from exc
        entries[entry.role] = entry
    return entries


def load_catalogue() -> dict[str, CatalogueEntry]:
    """All catalogue entries by role (asr, ehr_agent, letter_writer, embedded)."""
    return _load(manifest_dir())


def catalogue_entry(role: str) -> CatalogueEntry:
    entries = load_catalogue()
    if role not in entries:
        raise ModelPackError(f"no catalogue entry for model role {role!r} in {manifest_dir()}")
    return entries[role]
