"""A letter is never signed with a section the writer should have written left empty: the headless
command refuses (exit 3, naming the sections) unless --allow-empty-sections; then the PDF and the
audit say which sections were not written, and no empty heading is printed."""

from __future__ import annotations

from pathlib import Path

import accounts
import pytest
import workflow_samples as samples
from click.testing import CliRunner
from pypdf import PdfReader

from clarke_desktop.cli import cli
from clarke_desktop.pipeline.run import PipelineResult
from clarke_desktop.store import AppStore


@pytest.fixture
def drafted_with_an_empty_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """run-consultation whose drafting step writes the sample letter with "Assessment and plan" empty
    (as when the model's text was refused); everything after drafting is the real code."""
    import clarke_desktop.session.headless as headless

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    accounts.set_up(tmp_path / "data")
    accounts.sign_in_env(monkeypatch, tmp_path)

    def draft(service, consultation_id, request, on_event):
        document = samples.document(consultation_id, discrepancy=False)
        document.sections[2].content = "   "
        store = AppStore()
        try:
            store.save_transcript(consultation_id, samples.transcript(), actor=request.signed_in.account.display_name)
            version = store.save_generated_letter(consultation_id, document, actor=request.signed_in.account.display_name)
        finally:
            store.close()
        return PipelineResult(consultation_id, samples.transcript(), samples.context(), document, version)

    monkeypatch.setattr(headless, "_draft", draft)
    return tmp_path


def _run(tmp: Path, *extra: str):
    args = ["run-consultation", "--patient", "pt-001", "--transcript", str(tmp / "t.txt"), "--sign-off", "Dr S. Chen",
            "--out", str(tmp / "out"), "--json", *extra]  # fmt: skip
    (tmp / "t.txt").write_text(samples.TRANSCRIPT_TEXT, encoding="utf-8")
    return CliRunner().invoke(cli, args)


def test_an_empty_section_is_refused_by_name_and_nothing_is_signed(drafted_with_an_empty_plan: Path) -> None:
    result = _run(drafted_with_an_empty_plan)
    assert result.exit_code == 3, result.output
    assert "Not signed: this section is empty: Assessment and plan" in result.output
    with AppStore() as store:
        (record,) = store.consultations()
        assert store.latest_letter(record.id).signed is False
        assert not list((drafted_with_an_empty_plan / "out").glob("*.pdf"))


def test_allowed_empty_sections_are_named_in_the_pdf_and_the_audit(drafted_with_an_empty_plan: Path) -> None:
    result = _run(drafted_with_an_empty_plan, "--allow-empty-sections")
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.stdout)
    text = " ".join(p.extract_text() for p in PdfReader(summary["pdf"]).pages).replace("\n", " ")
    assert "Not written: Assessment and plan." in text
    assert text.count("Assessment and plan") == 1  # named once: no empty heading printed
    assert "History of presenting complaint" in text
    with AppStore() as store:
        signed = [e for e in store.audit_entries(summary["consultation_id"]) if e.event == "signed_off"]
        assert signed[-1].data["not_written"] == ["Assessment and plan"]
