"""The window and `run-consultation` are two front ends over one service: for the same transcript
file, patient and model they must leave the same consultation record (transcript, context, letter
versions, discrepancies and their resolutions), the same audit entries and the same PDF.

The model is scripted (the same reply for the same prompt), so the comparison is exact; what may
differ is only what names the run itself (ids, times, file names, hashes over those).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import accounts
import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripted_engine import ScriptedEngine  # noqa: E402

pytestmark = pytest.mark.gui

SIGNER = "Dr Sarah Chen"  # the demo clinician the window signs as (its Settings)


def _reply(turns: Any) -> str:
    prompt = turns[-1].text
    if "clinical_flags" in prompt or "JSON" in prompt:
        return json.dumps({"clinical_flags": ["HbA1c rising despite metformin"], "summary": "T2DM review."})
    return "Mrs Thompson reports tiredness and nocturia. HbA1c has risen to 58 mmol/mol. Metformin 500 mg twice daily."


@pytest.fixture
def scripted_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both front ends build their pipeline through default_components: give it a scripted model."""
    import clarke_desktop.pipeline.components as components

    real = components.default_components
    engine = ScriptedEngine(default=_reply, demo=True, name="scripted demo")
    monkeypatch.setattr(
        components,
        "default_components",
        lambda settings: dataclasses.replace(real(settings), engine=lambda role, attempt: engine),
    )


def _through_the_window(qtbot: Any, transcript: Path, data: Path, dialogs: Any, copy_to: Path,
                        monkeypatch: pytest.MonkeyPatch) -> str:  # fmt: skip
    from clarke_desktop.gui.app import build_window
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    service = ConsultationService(signed_in=accounts.signed_in(data), identity=Identity())
    assert service.actor == SIGNER
    w = build_window(service)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    try:
        qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=600_000)
        qtbot.mouseClick(w.dashboard.rows["pt-001"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.patient_screen.context is not None, timeout=60_000)
        w.flow.begin_consultation()
        w.flow.load_transcript_file(transcript)
        qtbot.waitUntil(lambda: bool(w.consultation.transcript_text()), timeout=10_000)
        w.flow.generate()
        qtbot.waitUntil(
            lambda: w.review.document is not None or w.processing.retry_button.isVisible(), timeout=300_000
        )
        assert w.review.document is not None
        # The headless run records every open discrepancy as "keep both" (its documented rule); the
        # clinician does the same here, one by one in the checklist's order.
        for item in list(w.review.items.values()):
            qtbot.mouseClick(item.keep_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.review.can_sign(), timeout=60_000)
        dialogs.password = accounts.CLINICIAN_PASSWORD  # typed again at the preview
        w.flow.sign_off()
        qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=120_000)
        assert w.flow.consultation_id is not None
        # What `run-consultation --out` does besides signing: a readable copy in a chosen folder.
        from PySide6.QtWidgets import QFileDialog

        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(copy_to / "letter.pdf"), ""))
        qtbot.mouseClick(w.signed.save_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "letter.pdf" in w.signed.saved.text(), timeout=30_000)
        return w.flow.consultation_id
    finally:
        w.runner.shutdown()
        service.close()


def _through_the_command(transcript: Path, out: Path, red: list[str]) -> dict[str, Any]:
    from clarke_desktop.cli import cli

    args = ["run-consultation", "--patient", "pt-001", "--transcript", str(transcript),
            "--sign-off", SIGNER, "--out", str(out), "--json", *[f"--resolve={i}=keep_both" for i in red]]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.output)
    return summary


def _record(consultation_id: str) -> dict[str, Any]:
    """The consultation as stored, with what names this particular run taken out."""
    from clarke_desktop.store import AppStore

    store = AppStore()
    try:
        transcript = store.latest_transcript(consultation_id)
        context = store.latest_context(consultation_id)
        versions = store.letter_versions(consultation_id)
        audit = store.audit_entries(consultation_id)
        exports = store.db.query("SELECT path FROM exports WHERE consultation_id = ?", (consultation_id,))
    finally:
        store.close()
    assert transcript is not None and context is not None and versions and exports
    return {
        "transcript": _plain(transcript.model_dump(mode="json"), consultation_id),
        "context": _plain(context.model_dump(mode="json", exclude={"retrieved_at"}), consultation_id),
        "versions": [
            {
                "version": v.version,
                "kind": v.kind,
                "author": v.author,
                "signed": v.signed,
                "document": _plain(v.document.model_dump(mode="json"), consultation_id),
            }
            for v in versions
        ],
        "audit": [
            {"event": e.event, "actor": e.actor, "data": _plain(e.data, consultation_id)} for e in audit
        ],
        "pdf": _pdf_text(Path(exports[-1]["path"]), consultation_id),
    }


_RUN_SPECIFIC = re.compile(
    r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?"  # timestamps
    r"|\b[0-9a-f]{64}\b"  # sha256 of run-specific content (PDF bytes, hashes over ids and times)
    r"|\b[0-9a-f]{40}\b"  # sha1 (the FHIR attachment hash of the PDF)
    r"|(DocumentReference|Composition|Encounter)/[\w.-]+"  # ids the FHIR store assigned
    r"|/[^\s\"']+\.pdf"  # where the PDF was written
    r"|-signed-\d{14}"  # the signing time in the PDF's file name
)
_VOLATILE_KEYS = {"at", "bytes", "signed_at", "created_at", "path", "pdf", "out_dir", "duration_s", "elapsed_s",
                  "generated_at", "started_at", "finished_at", "seconds", "timings"}  # fmt: skip


def _plain(value: Any, consultation_id: str) -> Any:
    if isinstance(value, dict):
        if value.get("action") == "keep_both":  # a resolution: its reason is compared apart
            value = {k: v for k, v in value.items() if k not in ("reason", "reason_sha256")}
        return {k: _plain(v, consultation_id) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_plain(v, consultation_id) for v in value]
    if isinstance(value, str):
        return _RUN_SPECIFIC.sub("<run>", value.replace(consultation_id, "<consultation>"))
    return value


def _signed(consultation_id: str, data_dir: Path) -> Any:
    import os

    from clarke_desktop.store import AppStore

    previous = os.environ["CLARKE_DATA_DIR"]
    os.environ["CLARKE_DATA_DIR"] = str(data_dir)
    store = AppStore()
    try:
        latest = store.latest_letter(consultation_id)
        assert latest is not None and latest.signed
        return latest.document
    finally:
        store.close()
        os.environ["CLARKE_DATA_DIR"] = previous


def _pdf_text(path: Path, consultation_id: str) -> str:
    """The text of the PDF kept in the data folder (sealed: read decrypted, as Clarke reads it)."""
    import io

    from clarke_desktop.identity import sealed

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(sealed.read_bytes(path))).pages)
    text = re.sub(r"\d{1,2}:\d{2}(:\d{2})?", "<time>", text)  # the signing time, printed in local time
    return str(_plain(text, consultation_id))


def test_the_window_and_run_consultation_leave_the_same_record(
    styled_app: Any, qtbot: Any, scripted_models: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    dialogs: Any,
) -> None:
    from clarke_desktop.paths import resources_dir
    from clarke_desktop.pipeline import HEADLESS_REASON

    transcript = tmp_path / "visit.txt"
    transcript.write_bytes((resources_dir() / "demo" / "pt-001_consultation.txt").read_bytes())
    # Each front end starts from a fresh data folder (the same demo record), so neither sees the
    # other's write-back.
    from clarke_desktop.letters.discrepancies import is_red

    for folder in ("window-data", "command-data"):
        accounts.set_up(tmp_path / folder, clinician_name=SIGNER)
    accounts.sign_in_env(monkeypatch, tmp_path)
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "window-data"))
    gui_cid = _through_the_window(
        qtbot, transcript, tmp_path / "window-data", dialogs, tmp_path / "copy", monkeypatch
    )
    gui = _record(gui_cid)
    found = _signed(gui_cid, tmp_path / "window-data").discrepancies
    red = [d.id for d in found if is_red(d)]
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "command-data"))
    summary = _through_the_command(transcript, tmp_path / "out", red)
    cli = _record(summary["consultation_id"])
    assert gui["versions"][0]["document"]["discrepancies"], "the demo consultation contradicts the record"
    # The one documented difference: a headless run cannot ask, so it gives each "keep both" it
    # decides itself the fixed reason; red items were named on the command line, as clicked.
    for d in summary["discrepancies"]:
        assert d["resolution"]["reason"] == (None if d["id"] in red else HEADLESS_REASON)
    assert all(d.resolution.reason is None for d in _signed(gui_cid, tmp_path / "window-data").discrepancies)
    for part in ("transcript", "context", "versions", "audit", "pdf"):
        assert gui[part] == cli[part], (
            f"the window and run-consultation differ in the {part}:\n"
            + _first_difference(gui[part], cli[part])
        )


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items in the window, {len(b)} from the command"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: window {a!r}\n  command {b!r}"
