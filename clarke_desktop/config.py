"""User settings: who signs the letters, the letterhead, audio retention, devices and backends.

One declared schema (pydantic), stored as JSON at `paths.settings_path()`, versioned and migrated
on load. Layering: defaults, then the user's file, then explicit overrides (CLI flags).
Written atomically and readable by the user only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from clarke_desktop import paths
from clarke_desktop.errors import ClarkeError

SETTINGS_VERSION = 1


class SettingsError(ClarkeError):
    """The settings file cannot be read; the message names the file and the problem."""


class ClinicianSettings(BaseModel):
    name: str = "Dr A. Clinician"
    title: str = "Consultant"
    specialty: str = "General Medicine"
    gmc_number: str = ""  # the signed-in account's registration ("GMC 7012345", "NMC 12A3456B")

    @property
    def registration(self) -> str:
        """As printed: a bare number is a GMC number; one with its register's name stays as it is."""
        reg = self.gmc_number.strip()
        return f"GMC {reg}" if reg[:1].isdigit() else reg


class Letterhead(BaseModel):
    hospital: str = "Northbridge General Hospital NHS Foundation Trust"  # the bundled demo clinic's
    department: str = "General Medical Outpatients"
    address: list[str] = Field(default_factory=lambda: ["Hospital Road", "London", "SE1 7EH"])
    phone: str = "020 7946 0000"


class AudioSettings(BaseModel):
    retention_days: int = Field(default=28, ge=0, description="delete audio this many days after sign-off")
    input_device: str | None = None  # device name, never an index (indices change between boots)
    host_api: str | None = None


class LlmSettings(BaseModel):
    # installed: the installed model pack for each role, else the embedded demo model;
    # embedded: always the embedded demo model; server: an OpenAI-compatible server at server_url.
    backend: Literal["embedded", "installed", "server"] = "installed"
    server_url: str | None = None


class FhirSettings(BaseModel):
    backend: Literal["local", "remote"] = "local"
    remote_url: str | None = None


class SecuritySettings(BaseModel):
    # Minutes without input before the window locks (0: never). An administrator sets it with
    # `clarke-desktop settings idle-lock`; a value edited into the file by hand is not used.
    idle_lock_minutes: float = Field(default=5, ge=0, le=240)


class Settings(BaseModel):
    version: int = SETTINGS_VERSION
    clinician: ClinicianSettings = Field(default_factory=ClinicianSettings)
    letterhead: Letterhead = Field(default_factory=Letterhead)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)


def _from_v0(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (no "version" key) kept flat keys; nest them."""
    flat = dict(raw)
    out: dict[str, Any] = {"version": 1}
    clinician = {
        k: flat.pop(f"clinician_{k}") for k in ClinicianSettings.model_fields if f"clinician_{k}" in flat
    }
    if clinician:
        out["clinician"] = clinician
    if "retention_days" in flat:
        out["audio"] = {"retention_days": flat.pop("retention_days")}
    for key in ("letterhead", "llm", "fhir", "audio", "clinician"):
        if key in flat and isinstance(flat[key], dict):
            out.setdefault(key, {}).update(flat.pop(key))
    return out


_MIGRATIONS = {0: _from_v0}


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = int(raw.get("version", 0))
    if version > SETTINGS_VERSION:
        raise SettingsError(
            f"settings version {version} is newer than this app understands ({SETTINGS_VERSION}); "
            "update Clarke Desktop"
        )
    while version < SETTINGS_VERSION:
        raw = _MIGRATIONS[version](raw)
        version = int(raw["version"])
    return raw


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the file (if it exists), then `overrides` (nested dict, e.g. from CLI flags)."""
    path = path or paths.settings_path()
    raw: dict[str, Any] = {}
    if not path.exists():
        # First start: sign as the bundled demo clinic's clinician until they set their own name.
        raw = _bundled_clinic_clinician()
    else:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise SettingsError(f"settings file {path} must hold a JSON object")
        raw = migrate(raw)
    if overrides:
        raw = _deep_merge(raw, overrides)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings in {path}: {exc}") from exc


def _bundled_clinic_clinician() -> dict[str, Any]:
    try:
        clinic = json.loads((paths.resources_dir() / "clinic" / "clinic.json").read_text(encoding="utf-8"))
        who = clinic["clinician"]
        return {"clinician": {k: who[k] for k in ("name", "title", "specialty") if k in who}}
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return {}


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    from clarke_desktop.files import atomic_write

    return atomic_write(path or paths.settings_path(), settings.model_dump_json(indent=2))


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
