"""`clarke-desktop verify` and `correct`: the JSON contracts, batch order, per-line errors, exit
codes, and a store named by CLARKE_FHIR_DB read as it is (never seeded, never written)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.paths import resources_dir

TRANSCRIPT = (resources_dir() / "demo" / "pt-001_transcript.txt").read_text(encoding="utf-8")
FACT_KEYS = {"text", "kind", "start", "end", "supported", "evidence"}
DISCREPANCY_KEYS = {"kind", "subject", "said", "recorded", "start", "end", "source", "description"}


@pytest.fixture
def store(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "named.sqlite3"
    shutil.copy(demo_db, copy)
    monkeypatch.setenv("CLARKE_FHIR_DB", str(copy))
    return copy


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_verify_single_prints_one_object_with_exact_offsets(store: Path, tmp_path: Path) -> None:
    letter = "Metformin 500 mg twice a day. HbA1c 58 mmol/mol. Ramipril 10 mg at night. Allergic to penicillin."
    (tmp_path / "t.txt").write_text(TRANSCRIPT, encoding="utf-8")
    (tmp_path / "l.txt").write_text(letter, encoding="utf-8")
    result = run("verify", "--transcript", str(tmp_path / "t.txt"), "--letter", str(tmp_path / "l.txt"),
                 "--patient", "pt-001", "--json")  # fmt: skip
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert set(out) == {"id", "facts", "discrepancies"}
    for fact in out["facts"]:
        assert set(fact) == FACT_KEYS and letter[fact["start"] : fact["end"]] == fact["text"]
        for ev in fact["evidence"]:
            assert ev["kind"] in {"transcript", "record"}
            if ev["kind"] == "transcript":
                assert TRANSCRIPT[ev["start"] : ev["end"]] == ev["text"]
            else:
                assert "/" in ev["source"]
    by_text = {f["text"]: f for f in out["facts"]}
    assert by_text["10 mg"]["supported"] is False and by_text["Ramipril"]["supported"] is False
    assert by_text["500 mg"]["supported"] is True and by_text["penicillin"]["kind"] == "allergy"
    for d in out["discrepancies"]:
        assert set(d) == DISCREPANCY_KEYS
        if d["start"] is not None:
            assert TRANSCRIPT[d["start"] : d["end"]] == d["said"]
    assert {"lab_value", "dose"} <= {d["kind"] for d in out["discrepancies"]}


def test_verify_batch_answers_every_line_in_order_and_errors_per_line(store: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "transcript": "metformin 500 mg bd", "letter": "Metformin 500 mg bd.", "patient": None}),
        "{not json",
        json.dumps({"id": "c", "transcript": TRANSCRIPT, "letter": "", "patient": "pt-001"}),
        json.dumps({"id": "d", "transcript": "x", "letter": "y", "patient": "no-such-patient"}),
        json.dumps({"id": "e", "transcript": 5, "letter": "y", "patient": None}),
    ]
    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("verify", "--batch", str(batch), "--json")
    assert result.exit_code == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["a", None, "c", "d", "e"]
    assert all(f["supported"] for f in out[0]["facts"]) and out[0]["discrepancies"] == []
    assert set(out[1]) == {"id", "error"} and "JSON" in out[1]["error"]
    assert out[2]["facts"] == [] and out[2]["discrepancies"]  # letter empty: discrepancies only
    assert "no-such-patient" in out[3]["error"] and set(out[4]) == {"id", "error"}


def test_an_unreadable_batch_file_is_the_only_non_zero_exit(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", "--batch", str(tmp_path / "missing.jsonl"), "--json"])
    assert result.exit_code == 2 and result.stdout == ""


def test_a_named_store_is_read_as_it_is_never_seeded_or_written(store: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    batch = tmp_path / "in.jsonl"
    batch.write_text(json.dumps({"id": 1, "transcript": TRANSCRIPT, "letter": "x", "patient": "pt-002"}) + "\n")
    assert run("verify", "--batch", str(batch), "--json").exit_code == 0
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    empty = tmp_path / "empty.sqlite3"
    result = CliRunner().invoke(cli, ["verify", "--batch", str(batch), "--json"], env={"CLARKE_FHIR_DB": str(empty)})
    assert "error" in json.loads(result.stdout) and not empty.exists()


def test_correct_single_and_batch(store: Path, tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("She takes metforming and escitalopram; on met for min.", encoding="utf-8")
    result = run("correct", "--transcript", str(tmp_path / "t.txt"), "--term", "citalopram", "--term", "metformin",
                 "--json")  # fmt: skip
    out = json.loads(result.stdout)
    assert set(out) == {"id", "text", "corrections", "flags"}
    assert out["text"] == "She takes metformin and escitalopram; on metformin."
    text = (tmp_path / "t.txt").read_text(encoding="utf-8")
    assert [(c["heard"], c["corrected"]) for c in out["corrections"]] == [("metforming", "metformin"), ("met for min", "metformin")]
    assert all(text[c["start"] : c["end"]] == c["heard"] for c in out["corrections"])
    at = text.index("escitalopram")
    assert out["flags"] == [{"heard": "escitalopram", "candidates": ["citalopram"], "start": at, "end": at + 12}]
    batch = tmp_path / "in.jsonl"
    batch.write_text(
        json.dumps({"id": "r", "transcript": "on ramapril and gliclazide", "patient": "pt-001", "terms": None}) + "\n"
        + json.dumps({"id": "t", "transcript": "takes lanzoprazole", "patient": None, "terms": ["lansoprazole"]}) + "\n"
        + json.dumps({"id": "bad", "transcript": "x", "patient": None, "terms": "lansoprazole"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    out = [json.loads(line) for line in run("correct", "--batch", str(batch), "--json").stdout.splitlines()]
    assert [o["id"] for o in out] == ["r", "t", "bad"]
    assert out[0]["text"] == "on Ramipril and gliclazide" and out[1]["text"] == "takes lansoprazole"
    assert "error" in out[2]


def test_every_safety_command_documents_its_contract_with_an_example() -> None:
    for name in ("verify", "correct"):
        help_text = " ".join(CliRunner().invoke(cli, [name, "--help"]).stdout.split())
        assert "Example:" in help_text and "--batch" in help_text and "--json" in help_text
        assert "Offsets are code-point positions" in help_text and "Exit status" in help_text


def test_a_blank_line_in_a_batch_is_answered_too(tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    line = json.dumps({"id": "a", "transcript": "x", "letter": "", "patient": None})
    batch.write_text(f"{line}\n\n{line}\n", encoding="utf-8")
    out = [json.loads(x) for x in run("verify", "--batch", str(batch), "--json").stdout.splitlines()]
    assert [o.get("id") for o in out] == ["a", None, "a"] and "line 2" in out[1]["error"]
