"""`local-fhir` commands through click's CliRunner (JSON on stdout, errors on stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir_builders import observation, patient

from local_fhir.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "p.ndjson").write_text(json.dumps(patient("p1", "Thompson")) + "\n")
    (folder / "o.ndjson").write_text(
        json.dumps(observation("o1", "Patient/p1", "2339-0", "2024-02-01")) + "\n"
    )
    return folder


def test_init_import_search_read_export_stats(runner: CliRunner, tmp_path: Path, data: Path) -> None:
    db = str(tmp_path / "f.sqlite3")
    assert runner.invoke(main, ["init", "--db", db]).exit_code == 0
    result = runner.invoke(main, ["import", "--db", db, str(data)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resources"] == 2
    assert "ok" in result.stderr and "p.ndjson" in result.stderr

    result = runner.invoke(
        main, ["search", "--db", db, "Observation?patient=p1&_include=Observation:subject"]
    )
    assert result.exit_code == 0
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "searchset" and len(bundle["entry"]) == 2

    result = runner.invoke(main, ["read", "--db", db, "Patient/p1"])
    assert json.loads(result.stdout)["name"][0]["family"] == "Thompson"
    result = runner.invoke(main, ["read", "--db", db, "Patient/p1/_history/1"])
    assert json.loads(result.stdout)["meta"]["versionId"] == "1"

    out = tmp_path / "out"
    result = runner.invoke(main, ["export", "--db", db, "--out", str(out)])
    assert result.exit_code == 0
    assert (out / "Patient.ndjson").read_text().count("\n") == 1

    stats = json.loads(runner.invoke(main, ["stats", "--db", db]).stdout)
    assert stats["by_type"] == {"Observation": 1, "Patient": 1}


def test_errors_go_to_stderr_with_non_zero_exit(runner: CliRunner, tmp_path: Path, data: Path) -> None:
    db = str(tmp_path / "f.sqlite3")
    runner.invoke(main, ["import", "--db", db, str(data)])
    result = runner.invoke(main, ["read", "--db", db, "Patient/nope"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "does not exist" in result.stderr
    result = runner.invoke(main, ["search", "--db", db, "Patient?colour=red"])
    assert result.exit_code == 1 and "colour" in result.stderr
    result = runner.invoke(main, ["stats", "--db", str(tmp_path / "missing.sqlite3")])
    assert result.exit_code == 1 and "no FHIR database" in result.stderr


def test_import_continues_past_a_bad_file_and_fails_overall(
    runner: CliRunner, tmp_path: Path, data: Path
) -> None:
    (data / "zz_bad.json").write_text("{")
    db = str(tmp_path / "f.sqlite3")
    result = runner.invoke(main, ["import", "--db", db, str(data)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and report["resources"] == 2
    assert "FAILED" in result.stderr and "zz_bad.json" in result.stderr


def test_default_database_is_the_apps(
    runner: CliRunner, data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from clarke_desktop.paths import fhir_db_path

    monkeypatch.setenv("CLARKE_FHIR_DB", str(tmp_path / "app" / "fhir.sqlite3"))
    assert runner.invoke(main, ["import", str(data)]).exit_code == 0
    assert fhir_db_path().is_file()
    assert json.loads(runner.invoke(main, ["stats"]).stdout)["database"] == str(fhir_db_path())


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    for name, command in main.commands.items():
        assert command.help and "Example" in command.help, name


def test_validate_files(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(patient("p1", "Thompson")))
    lines = [json.dumps(patient("p2", "Ok")), json.dumps({"resourceType": "Patient", "active": "true"}), "{nope"]
    bad = tmp_path / "bad.ndjson"
    bad.write_text("\n".join(lines) + "\n")
    result = runner.invoke(main, ["validate", str(good)])
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True
    assert json.loads(result.stdout)["files"][0]["outcome"]["issue"][0]["severity"] == "information"
    result = runner.invoke(main, ["validate", str(good), str(bad), str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [f["ok"] for f in doc["files"]] == [True, False, False]
    issues = doc["files"][1]["outcome"]["issue"]
    assert [(i["severity"], i["expression"][0]) for i in issues] == [("error", "bad.ndjson:2.Patient.active"),
                                                                     ("fatal", "bad.ndjson:3")]  # fmt: skip
    assert doc["files"][1]["resources"] == 3
    assert "INVALID" in result.stderr and "bad.ndjson:2.Patient.active" in result.stderr
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient("p3", "Ok")}, {"resource": {"resourceType": "Patient", "gender": "mmale"}}]}))  # fmt: skip
    result = runner.invoke(main, ["validate", str(bundle)])
    assert result.exit_code == 1
    issue = json.loads(result.stdout)["files"][0]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.ofType(Patient).gender"]


def test_every_command_documents_itself(runner: CliRunner) -> None:
    for command in (["validate"], ["import"], ["quarantine"], ["quarantine", "list"], ["quarantine", "retry"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, command
    text = " ".join(runner.invoke(main, ["validate", "--help"]).output.split())  # as wrapped for the terminal
    assert "Exit status: 0 when every file is valid, 1 when any is not" in text
    assert "--lenient" in runner.invoke(main, ["import", "--help"]).output
