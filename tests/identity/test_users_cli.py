"""`clarke-desktop users …`, `keys …` and the sign-in of `run-consultation`: the contracts IT and
scripts rely on (password on stdin or in a file, never in argv; the recovery key printed once)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.store import AppStore


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLARKE_USER", raising=False)
    monkeypatch.delenv("CLARKE_PASSWORD_FILE", raising=False)
    return tmp_path


def _run(args: list[str], stdin: str = "", env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, input=stdin, env=env)


def _admin(data: Path) -> tuple[Path, str]:
    first = _run(
        ["users", "add", "it.admin", "--role", "admin", "--display-name", "IT Admin"], "admin passphrase\n"
    )
    assert first.exit_code == 0, first.output
    (line,) = [ln for ln in first.output.splitlines() if "recovery key" in ln]
    pw = data / "admin.pw"
    pw.write_text("admin passphrase\n")
    return pw, re.findall(r"[A-Z2-7]{4}(?:-[A-Z2-7]{1,4})+", line)[0]


def test_the_first_admin_needs_no_sign_in_and_gets_the_recovery_key_once(data: Path) -> None:
    pw, recovery = _admin(data)
    assert len(recovery.replace("-", "")) == 52
    again = _run(
        ["users", "add", "x.admin", "--role", "admin", "--display-name", "X"], "another passphrase\n"
    )
    assert again.exit_code != 0 and "not signed in" in again.output  # later adds need an admin
    with AppStore() as store:
        assert [e.event for e in store.audit_entries()] == ["audit_keyed", "set_up"]


def test_an_admin_adds_lists_disables_and_unlocks(data: Path) -> None:
    pw, _ = _admin(data)
    admin = ["--user", "it.admin", "--password-file", str(pw)]
    add = _run(["users", "add", "s.chen", "--role", "clinician", "--display-name", "Dr S. Chen",
                "--registration", "GMC 7012345", *admin], "clinician passphrase\n")  # fmt: skip
    assert add.exit_code == 0, add.output
    listed = _run(["users", "list", "--json", *admin])
    assert '"registration": "GMC 7012345"' in listed.output
    assert _run(["users", "disable", "s.chen", *admin]).exit_code == 0
    chen_pw = data / "chen.pw"
    chen_pw.write_text("clinician passphrase\n")
    refused = _run(["users", "list", "--user", "s.chen", "--password-file", str(chen_pw)])
    assert refused.exit_code != 0 and "disabled" in refused.output
    assert _run(["users", "enable", "s.chen", *admin]).exit_code == 0
    not_admin = _run(["users", "list", "--user", "s.chen", "--password-file", str(chen_pw)])
    assert not_admin.exit_code != 0 and "not an administrator" in not_admin.output
    with AppStore() as store:
        events = [(e.event, e.actor, e.data.get("account")) for e in store.audit_entries()]
    assert ("account_added", "it.admin", "s.chen") in events
    assert ("account_disabled", "it.admin", "s.chen") in events and (
        "account_enabled",
        "it.admin",
        "s.chen",
    ) in events


def test_keys_recover_sets_a_new_password_and_rotate_replaces_the_recovery_key(data: Path) -> None:
    pw, recovery = _admin(data)
    key_file = data / "recovery.txt"
    key_file.write_text(recovery + "\n")
    recovered = _run(["keys", "recover", "--recovery-key-file", str(key_file), "--user", "it.admin"],
                     "brand new passphrase\n")  # fmt: skip
    assert recovered.exit_code == 0, recovered.output
    pw.write_text("brand new passphrase\n")
    rotated = _run(["keys", "rotate", "--user", "it.admin", "--password-file", str(pw)])
    assert rotated.exit_code == 0 and "recovery key" in rotated.output
    stale = _run(
        ["keys", "recover", "--recovery-key-file", str(key_file), "--user", "it.admin"], "x passphrase 1\n"
    )
    assert stale.exit_code != 0 and "does not open" in stale.output


def test_run_consultation_without_a_sign_in_writes_nothing(data: Path) -> None:
    transcript = data / "t.txt"
    transcript.write_text("Doctor: how are you? Patient: fine.")
    args = ["run-consultation", "--patient", "pt-001", "--transcript", str(transcript), "--sign-off", "Dr S. Chen",
            "--out", str(data / "out")]  # fmt: skip
    result = _run(args)
    assert result.exit_code != 0 and "not signed in" in result.output
    assert not (data / "out").exists()
    assert not (data / "data" / "clarke.sqlite3").exists()


def test_run_consultation_signs_only_as_the_signed_in_account(data: Path) -> None:
    pw, _ = _admin(data)
    _run(["users", "add", "s.chen", "--role", "clinician", "--display-name", "Dr S. Chen", "--user", "it.admin",
          "--password-file", str(pw)], "clinician passphrase\n")  # fmt: skip
    chen_pw = data / "chen.pw"
    chen_pw.write_text("clinician passphrase\n")
    transcript = data / "t.txt"
    transcript.write_text("Doctor: how are you? Patient: fine.")
    base = ["run-consultation", "--patient", "pt-001", "--transcript", str(transcript), "--out", str(data / "out"),
            "--user", "s.chen", "--password-file", str(chen_pw)]  # fmt: skip
    other = _run([*base, "--sign-off", "Dr Somebody Else"])
    assert other.exit_code != 0 and "not the signed-in account" in other.output
    as_admin = _run([*base[:-4], "--user", "it.admin", "--password-file", str(pw), "--sign-off", "it.admin"])
    assert as_admin.exit_code != 0 and "cannot sign letters" in as_admin.output
    assert not (data / "out").exists()


def test_help_documents_the_sign_in(data: Path) -> None:
    for command in (["users", "--help"], ["run-consultation", "--help"], ["keys", "rotate", "--help"]):
        out = _run(command).output
        assert "--password-file" in out or "CLARKE_PASSWORD_FILE" in out, command
    assert "stdin" in _run(["keys", "recover", "--help"]).output  # the recovery key is its sign-in
