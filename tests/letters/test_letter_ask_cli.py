"""`clarke-desktop letter` and `ask` on the app's own FHIR database (created from the bundled
dataset by ensure_database) and the embedded demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clarke_desktop.cli import cli
from clarke_desktop.llm.registry import get_engine
from clarke_desktop.paths import resources_dir

TRANSCRIPT = resources_dir() / "demo" / "pt-001_transcript.txt"


@pytest.mark.slow  # real llama.cpp inference on the embedded model
def test_letter_json_end_to_end_with_the_embedded_model() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "letter",
            "--patient",
            "pt-001",
            "--transcript",
            str(TRANSCRIPT),
            "--type",
            "patient",
            "--json",
            "--max-tokens",
            "6",
            "--no-flags",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [s["heading"] for s in out["sections"]][:2] == ["What we talked about", "Your recent test results"]
    assert all(s["content"] is not None for s in out["sections"])
    medicines = next(s for s in out["sections"] if s["key"] == "medications")
    assert "Metformin 500mg tablets 1 g twice daily (Oral)" in medicines["content"]
    assert out["model"]["demo"] is True and len(out["model"]["sha256"]) == 64 and out["model"]["name"]
    assert {d["kind"] for d in out["discrepancies"]} == {"lab_value", "dose", "allergy"}
    assert all(d["transcript"]["text"] and d["record_source"] for d in out["discrepancies"])
    assert isinstance(out["fact_check"], list)
    assert {"context_retrieval_s", "section.summary_s", "discrepancies_s", "fact_check_s"} <= set(
        out["timings"]
    )
    assert out["prompt_template_version"].startswith("prompts-v1-")


@pytest.mark.slow  # real llama.cpp inference on the embedded model
def test_letter_reports_prompt_tokens_and_reads_the_shared_prefix_once() -> None:
    def letter(*extra: str) -> dict:
        args = ["letter", "--patient", "pt-001", "--transcript", str(TRANSCRIPT), "--type", "patient",
                "--json", "--max-tokens", "6", "--no-flags", *extra]  # fmt: skip
        get_engine("letter_writer").forget_prefixes()  # each letter from a cold engine
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    cold = letter("--no-prefix-reuse")
    assert get_engine("letter_writer").prefix_reuse  # put back for the rest of the process
    reused = letter()
    # Two narrative sections: each prompt's length counted, the shared part read once when reused.
    assert cold["llm"]["requests"] == reused["llm"]["requests"] == 2
    assert cold["llm"]["prompt_tokens_requested"] == reused["llm"]["prompt_tokens_requested"]
    assert cold["llm"]["prompt_tokens_evaluated"] == cold["llm"]["prompt_tokens_requested"]
    assert reused["llm"]["prompt_tokens_evaluated"] < 0.6 * reused["llm"]["prompt_tokens_requested"]
    assert (cold["llm"]["prefix_reuse"], reused["llm"]["prefix_reuse"]) == (False, True)
    assert (cold["llm"]["sections_together"], reused["llm"]["sections_together"]) == (1, 2)
    # The same letter either way, its text aside (written together it may differ in rounding).
    assert [s["key"] for s in cold["sections"]] == [s["key"] for s in reused["sections"]]
    help_text = CliRunner().invoke(cli, ["letter", "--help"]).output
    assert "--no-prefix-reuse" in help_text and "prompt_tokens_evaluated" in help_text


def test_letter_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["letter", "--patient", "pt-999", "--transcript", str(TRANSCRIPT), "--no-flags"]
    )
    assert result.exit_code == 1 and "pt-999 is not in the record" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    result = runner.invoke(cli, ["letter", "--patient", "pt-001", "--transcript", str(empty)])
    assert result.exit_code == 1 and "empty.txt is empty" in result.output
    bad = tmp_path / "t.json"
    bad.write_text("{not json", encoding="utf-8")
    result = runner.invoke(cli, ["letter", "--patient", "pt-001", "--transcript", str(bad)])
    assert result.exit_code == 1 and "is not a Transcript JSON" in result.output


def test_ask_unknown_patient_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["ask", "--patient", "pt-999", "When was the last eGFR?"])
    assert result.exit_code == 1 and "pt-999 is not in the record" in result.output
