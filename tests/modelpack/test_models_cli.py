"""The models CLI end to end through click, on small generated files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from clarke_desktop.cli import cli


def _signing_key(runner: CliRunner, tmp_path: Path) -> Path:
    """IT's key made with `models keygen` and trusted on this machine with `models trust`."""
    key = tmp_path / "it" / "models.key"
    r = runner.invoke(cli, ["models", "keygen", "--out", str(key)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ssh-ed25519 ") and len(r.stdout.strip().splitlines()) == 1
    assert (key.with_name("models.key.pub").read_text().strip()) == r.stdout.strip()
    r = runner.invoke(cli, ["models", "trust", str(key.with_name("models.key.pub"))])
    assert r.exit_code == 0, r.output
    assert "trusted SHA256:" in r.output
    return key


def test_pack_install_status_verify_cli(stage: Path, tmp_path: Path, models_env: Path) -> None:
    runner = CliRunner()
    key = _signing_key(runner, tmp_path)
    pack = tmp_path / "pack"
    r = runner.invoke(
        cli, ["models", "pack", "--from", str(stage), "--out", str(pack), "--sign-key", str(key)]
    )
    assert r.exit_code == 0, r.output
    assert "signed with SHA256:" in r.stdout
    r = runner.invoke(cli, ["models", "install", str(pack)])
    assert r.exit_code == 0, r.output
    assert "installed letter_writer" in r.output
    r = runner.invoke(cli, ["models", "status", "--json"])
    assert r.exit_code == 0, r.output
    status_json = json.loads(r.stdout)
    roles = {d["role"]: d for d in status_json["roles"]}
    assert all(d["ok"] and d["installed"] for d in roles.values())
    assert all(d["check"] == "quick" and "signed by trusted key" in d["signature"] for d in roles.values())
    assert status_json["trust"]["allow_unsigned_packs"] is False
    assert len(status_json["trust"]["trusted_keys"]) == 2  # the fixture's and the one made above
    r = runner.invoke(cli, ["models", "status"])
    assert r.exit_code == 0 and "quick check" in r.stdout and "unsigned packs refused" in r.stdout
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
    key = _signing_key(runner, tmp_path)
    pack = tmp_path / "pack"
    r = runner.invoke(
        cli, ["models", "pack", "--from", str(stage), "--out", str(pack), "--sign-key", str(key)]
    )
    assert r.exit_code == 0, r.output
    tok = pack / "asr" / "tokenizer.json"
    tok.write_text(tok.read_text().replace("a", "b"))  # same size, different bytes
    r = runner.invoke(cli, ["models", "install", str(pack)])
    assert r.exit_code == 1
    assert "tokenizer.json" in r.output and "sha256" in r.output


def test_verify_with_nothing_installed_succeeds(models_env: Path) -> None:
    r = CliRunner().invoke(cli, ["models", "verify"])
    assert r.exit_code == 0
    assert "not installed" in r.output


def test_keygen_never_overwrites_and_keeps_the_private_key_private(tmp_path: Path, models_env: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "models.key"
    assert runner.invoke(cli, ["models", "keygen", "--out", str(key)]).exit_code == 0
    before = key.read_bytes()
    if os.name == "posix":
        assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in before
    r = runner.invoke(cli, ["models", "keygen", "--out", str(key)])
    assert r.exit_code == 1 and "already exists" in r.output
    assert key.read_bytes() == before


def test_unsigned_pack_is_built_with_a_warning_and_refused_at_install(
    stage: Path, tmp_path: Path, models_env: Path
) -> None:
    runner = CliRunner()
    pack = tmp_path / "pack"
    r = runner.invoke(cli, ["models", "pack", "--from", str(stage), "--out", str(pack)])
    assert r.exit_code == 0, r.output
    assert "UNSIGNED" in r.stdout and "not signed" in r.stderr
    r = runner.invoke(cli, ["models", "install", str(pack)])
    assert r.exit_code == 1 and "is not signed" in r.output and "Nothing was installed" in r.output
    assert not models_env.exists() or not any(models_env.iterdir())
