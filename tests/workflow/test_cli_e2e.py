"""`clarke-desktop run-consultation` end to end in a real process: the bundled demo record in a real
local FHIR store, the real EHR agent and letter writer on the embedded Gemma 3 270M GGUF, the real
application store, PDF and write-back. Tokens per section are capped to keep the run short."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import accounts
import pytest
from pypdf import PdfReader

from clarke_desktop.fhir.local import LocalFhirClient
from clarke_desktop.pdf import DEMO_MARKING
from clarke_desktop.pipeline import HEADLESS_REASON
from clarke_desktop.store import AppStore

REPO = Path(__file__).resolve().parents[2]
DEMO_TRANSCRIPT = REPO / "resources" / "demo" / "pt-001_transcript.txt"


def _fhir_db(path: Path) -> None:
    try:
        from clarke_desktop.demo_data import ensure_database
    except ImportError:
        from local_fhir.importer import import_paths
        from local_fhir.store import Store

        store = Store(path)
        report = import_paths(store, [REPO / "resources" / "fhir" / "demo"])
        store.close()
        assert all(f.ok for f in report.files)
    else:
        ensure_database()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~2 CPU-minutes; far more wall time on a shared 2-core machine
def test_run_consultation_headless_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(data))
    _fhir_db(data / "fhir.sqlite3")
    transcript = DEMO_TRANSCRIPT  # the bundled demo consultation, with slips planted on purpose
    out = tmp_path / "out"
    accounts.set_up(data)
    pw = tmp_path / "pw"
    pw.write_text(accounts.CLINICIAN_PASSWORD + "\n", encoding="utf-8")
    env = {**os.environ, "CLARKE_DATA_DIR": str(data)}
    command = [
        sys.executable, "-m", "clarke_desktop", "run-consultation", "--user", accounts.CLINICIAN,
        "--password-file", str(pw), "--patient", "pt-001", "--transcript", str(transcript), "--type", "clinic",
        "--sign-off", accounts.CLINICIAN, "--out", str(out), "--json",
        "--allow-empty-sections",  # the demo model's text is refused whenever it copies its prompt
    ]  # fmt: skip
    # The planted slips are red (a dose, an allergy): never resolved by default. The refusal lists
    # them; the re-run names each (the same ids: the same transcript and record).
    refused = subprocess.run([*command, "--max-section-tokens", "16"], capture_output=True, text=True, env=env,
                             timeout=1700, cwd=REPO)  # fmt: skip
    assert refused.returncode == 3, refused.stderr[-3000:]
    unresolved = json.loads(refused.stdout)["unresolved"]
    assert unresolved and not list(out.glob("*.pdf"))
    named = [f"--resolve={d['id']}=keep_both" for d in unresolved]
    proc = subprocess.run([*command, "--max-section-tokens", "40", *named], capture_output=True, text=True,
                          env=env, timeout=1700, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)

    assert set(summary["timings_s"]) >= {
        "transcribe",
        "context",
        "letter",
        "save",
        "sign_off_export_writeback",
    }
    assert summary["model"]["demo"] is True and "demo_model" in summary["degraded"]
    assert any("demo model" in w.lower() for w in summary["warnings"])
    assert summary["inference_s"]["letter_writer"] > 0

    pdf = Path(summary["pdf"])
    text = "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert DEMO_MARKING in text and "Re: " in text and "Thompson" in text and "Page 1 of" in text

    with AppStore(data / "clarke.sqlite3") as store:
        cid = summary["consultation_id"]
        assert store.audit_head() == (summary["audit_head"]["seq"], summary["audit_head"]["hash"])
        assert store.verify_audit().ok
        events = [e.event for e in store.audit_entries(cid)]
        for event in (
            "transcript_produced",
            "context_retrieved",
            "letter_generated",
            "signed_off",
            "exported",
            "written_back",
        ):
            assert event in events
        context_entry = next(e for e in store.audit_entries(cid) if e.event == "context_retrieved")
        assert any(r.startswith("Patient/pt-001/_history/") for r in context_entry.data["fhir_resources"])
        resolved = [e for e in store.audit_entries(cid) if e.event == "discrepancy_resolved"]
        assert summary["discrepancies"], "the demo transcript's planted slips were not flagged"
        assert len(resolved) == len(summary["discrepancies"])
        assert len(summary["auto_resolved"]) == len(summary["discrepancies"]) - len(unresolved)
        red = {d["id"] for d in unresolved}
        for d in summary["discrepancies"]:
            assert d["resolution"]["action"] == "keep_both"
            assert d["resolution"]["reason"] == (None if d["id"] in red else HEADLESS_REASON)
        assert summary["signed_by"] == accounts.CLINICIAN_NAME
        assert accounts.REGISTRATION in text  # the registration printed is the account's
        assert store.latest_letter(cid).signed

    fhir = LocalFhirClient(data / "fhir.sqlite3")
    try:
        kind, ref_id = summary["document_reference"].split("/")
        doc_ref = fhir.read(kind, ref_id)
        attachment = doc_ref["content"][0]["attachment"]
        assert doc_ref["status"] == "current" and doc_ref["subject"]["reference"] == "Patient/pt-001"
        assert base64.b64decode(attachment["hash"]) == hashlib.sha1(pdf.read_bytes()).digest()
        composition = fhir.read(*summary["composition"].split("/"))
        assert composition["encounter"]["reference"] == summary["encounter"]
        assert fhir.read(*summary["encounter"].split("/"))["subject"]["reference"] == "Patient/pt-001"
    finally:
        fhir.close()

    verify = subprocess.run(
        [sys.executable, "-m", "clarke_desktop", "audit", "verify", "--user", accounts.CLINICIAN,
         "--password-file", str(pw)],  # the log is in the encrypted store: signed in to read it
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert verify.returncode == 0 and "intact" in verify.stdout
