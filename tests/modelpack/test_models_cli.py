"""The models CLI end to end through click, on small generated files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from clarke_desktop.cli import cli


def test_pack_install_status_verify_cli(stage: Path, tmp_path: Path, models_env: Path) -> None:
    runner = CliRunner()
    pack = tmp_path / "pack"
    r = runner.invoke(cli, ["models", "pack", "--from", str(stage), "--out", str(pack)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["models", "install", str(pack)])
    assert r.exit_code == 0, r.output
    assert "installed letter_writer" in r.output
    r = runner.invoke(cli, ["models", "status", "--json"])
    assert r.exit_code == 0, r.output
    status_json = json.loads(r.stdout)
    roles = {d["role"]: d for d in status_json["roles"]}
    assert all(d["ok"] and d["installed"] for d in roles.values())
    assert status_json["embedded"]["present"] is True
    assert roles["letter_writer"]["precision"].startswith("Q4_K_M")

    victim = models_env / "ehr_agent" / "medgemma-1.5-4b-it-Q4_K_M.gguf"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x55
    victim.write_bytes(bytes(data))
    r = runner.invoke(cli, ["models", "verify", "--json"])
    assert r.exit_code == 1
    roles = {d["role"]: d for d in json.loads(r.stdout)["roles"]}
    assert roles["ehr_agent"]["files"][0]["status"] == "hash_mismatch"
    assert roles["asr"]["ok"] and roles["letter_writer"]["ok"]


def test_install_of_a_tampered_pack_exits_nonzero_and_names_the_file(
    stage: Path, tmp_path: Path, models_env: Path
) -> None:
    runner = CliRunner()
    pack = tmp_path / "pack"
    assert runner.invoke(cli, ["models", "pack", "--from", str(stage), "--out", str(pack)]).exit_code == 0
    tok = pack / "asr" / "tokenizer.json"
    tok.write_text(tok.read_text().replace("a", "b"))  # same size, different bytes
    r = runner.invoke(cli, ["models", "install", str(pack)])
    assert r.exit_code == 1
    assert "tokenizer.json" in r.output and "sha256" in r.output


def test_verify_with_nothing_installed_succeeds(models_env: Path) -> None:
    r = CliRunner().invoke(cli, ["models", "verify"])
    assert r.exit_code == 0
    assert "not installed" in r.output
