from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from clarke_desktop.config import SETTINGS_VERSION, Settings, SettingsError, load_settings, save_settings


def test_defaults_round_trip_private(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = load_settings(path)
    assert settings.audio.retention_days == 28
    settings.clinician.name = "Dr S. Chen"
    settings.clinician.gmc_number = "7654321"
    save_settings(settings, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_settings(path)
    assert again == settings and json.loads(path.read_text())["version"] == SETTINGS_VERSION


def test_old_flat_file_is_migrated_and_overrides_layer_on_top(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"clinician_name": "Dr Old", "retention_days": 7}))
    settings = load_settings(path, overrides={"llm": {"backend": "embedded"}})
    assert settings.clinician.name == "Dr Old"
    assert settings.audio.retention_days == 7
    assert settings.llm.backend == "embedded"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "cannot read"),
        ("[]", "JSON object"),
        ('{"version": 1, "audio": {"retention_days": -1}}', "invalid"),
        ('{"version": 9}', "newer"),
    ],
)
def test_bad_file_names_itself(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=problem) as info:
        load_settings(path)
    if problem != "newer":
        assert str(path) in str(info.value)


def test_settings_model_is_json_schema_describable() -> None:
    assert "retention_days" in json.dumps(Settings.model_json_schema())


def test_first_start_signs_as_the_bundled_clinic_clinician(tmp_path: Path) -> None:
    from clarke_desktop.paths import resources_dir

    clinic = json.loads((resources_dir() / "clinic" / "clinic.json").read_text())["clinician"]
    settings = load_settings(tmp_path / "absent.json")
    assert settings.clinician.name == clinic["name"] and settings.clinician.title == clinic["title"]
    save_settings(
        settings.model_copy(update={"clinician": settings.clinician.model_copy(update={"name": "Dr B"})}),
        tmp_path / "s.json",
    )
    assert load_settings(tmp_path / "s.json").clinician.name == "Dr B"  # their own name wins once saved
