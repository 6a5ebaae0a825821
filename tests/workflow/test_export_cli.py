"""`clarke-desktop export --letter ID` prints a signed version's PDF again (issue #16): a PDF lost
after sign-off (or never finished) is never lost for good, and the re-created one carries the
signer, time and version that were signed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import workflow_samples as samples
from click.testing import CliRunner

from clarke_desktop import paths
from clarke_desktop.cli import cli
from clarke_desktop.config import Settings
from clarke_desktop.files import file_sha256
from clarke_desktop.pipeline import sign_off_and_export
from clarke_desktop.store import AppStore


def _signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, str]:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
        final = sign_off_and_export(store, cid, "Dr S. Chen", paths.exports_dir(), settings=Settings(), fhir=None)
    return cid, final.pdf_path, final.signed_at


def test_a_lost_pdf_is_printed_again_as_signed_with_a_readable_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid, pdf, signed_at = _signed(tmp_path, monkeypatch)
    pdf.unlink()  # lost: a disk error, a deleted file
    copy = tmp_path / "out" / "letter.pdf"
    done = CliRunner().invoke(cli, ["export", "--letter", cid, "--out", str(copy), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["version"] == 1 and result["signed_by"] == "Dr S. Chen" and result["signed_at"] == signed_at
    assert Path(result["pdf"]) == pdf and pdf.is_file() and result["sha256"] == file_sha256(pdf)
    assert result["copy"] == str(copy) and copy.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(copy), "-"], capture_output=True, text=True, check=True).stdout
    assert "Dr S. Chen" in text
    with AppStore() as store:
        assert store.latest_export(cid, 1).sha256 == file_sha256(pdf)  # write-back retry finds it again
        exported = [e for e in store.audit_entries(cid) if e.event == "exported"]
        assert len(exported) == 3  # at sign-off, re-created, the readable copy


def test_only_a_signed_version_can_be_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, _pdf, _ = _signed(tmp_path, monkeypatch)
    missing = CliRunner().invoke(cli, ["export", "--letter", cid, "--version", "2"])
    assert missing.exit_code == 1 and "no signed version 2" in missing.output
    with AppStore() as store:
        other = store.create_consultation("pt-002", clinician="Dr S. Chen").id
    unsigned = CliRunner().invoke(cli, ["export", "--letter", other])
    assert unsigned.exit_code == 1 and "only a signed letter has a PDF" in unsigned.output
