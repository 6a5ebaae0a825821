"""The clinician's work is never lost: what is typed is autosaved and comes back when the patient
is reopened or the app restarts, a draft letter reopens where it was left (also after switching
patients), an unfinished draft is listed on the clinic page, and closing with work in progress
asks first. The crash cases kill a real app process with SIGKILL and start a fresh window."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fake_backend import FakeBackend

pytestmark = pytest.mark.gui

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake_window(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window

    backend = FakeBackend()
    w = build_window(backend)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=10_000)
    yield w
    w.runner.shutdown()


def _open(w, qtbot, pid: str) -> None:
    w.flow.open_patient(pid)
    qtbot.waitUntil(
        lambda: w.flow.consultation_id == f"cons-{pid}" and w.flow.context is not None, timeout=10_000
    )


def test_typed_text_is_autosaved_and_comes_back_after_switching_patients(fake_window, qtbot) -> None:
    w = fake_window
    _open(w, qtbot, "pt-001")
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: how are you? Patient: tired.")
    w.consultation.aside.setPlainText("BP 142/88")
    qtbot.waitUntil(lambda: "cons-pt-001" in w.backend.inputs, timeout=5_000)  # saved after a pause
    assert w.backend.inputs["cons-pt-001"] == ("Doctor: how are you? Patient: tired.", "BP 142/88")
    _open(w, qtbot, "pt-002")
    assert w.consultation.transcript_text() == "" and w.consultation.aside_text() == ""
    _open(w, qtbot, "pt-001")
    assert w.consultation.transcript_text() == "Doctor: how are you? Patient: tired."
    assert w.consultation.aside_text() == "BP 142/88"


def test_a_draft_letter_reopens_on_the_letter_page_after_switching_patients(fake_window, qtbot) -> None:
    w = fake_window
    _open(w, qtbot, "pt-001")
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: how are you? Patient: tired.")
    w.consultation.aside.setPlainText("Plan: review in 3 months")
    w.flow.generate()
    qtbot.waitUntil(lambda: w.review.document is not None and not w.review.busy_reasons, timeout=10_000)
    assert w.review.aside_note.isVisibleTo(w) and "review in 3 months" in w.review.aside_note.text()
    for _ in range(2):  # Khan -> Okafor -> Khan, twice: the draft is there every time
        _open(w, qtbot, "pt-002")
        assert not w.nav["letter"].isEnabled()
        _open(w, qtbot, "pt-001")
        assert w.nav["letter"].isEnabled()
        w.navigate("letter")
        assert w.current_page() == "review"
        assert w.review.document is not None and w.review.document.sections[0].content


def test_closing_with_work_in_progress_asks_first_and_no_keeps_the_window(
    fake_window, qtbot, dialogs, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    w = fake_window
    w.close()  # nothing open: closes without a question
    assert not dialogs.asked
    w.show()
    _open(w, qtbot, "pt-001")
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: how are you?")
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: dialogs.asked.append(a[2]) or QMessageBox.StandardButton.No
    )
    w.close()
    assert w.isVisible() and "has no letter yet" in dialogs.asked[-1]


def _crash(tmp_path: Path, state: str) -> str:
    """Run the app in its own process up to `state`, then SIGKILL it; returns the consultation id."""
    env = {**os.environ, "CLARKE_DATA_DIR": os.environ["CLARKE_DATA_DIR"], "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "crashing_app.py"), state],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("READY"), (
            f"the app did not reach {state}: {line}{proc.stderr.read() if proc.stderr else ''}"
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return line.split()[1]


@pytest.fixture
def fresh_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _restart(qtbot):
    from clarke_desktop.gui.app import build_window
    from clarke_desktop.session.service import ConsultationService

    w = build_window(ConsultationService())
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.mark.parametrize("state", ["typed", "edited"])
def test_after_sigkill_a_restart_offers_recovery_and_brings_everything_back(
    fresh_data, styled_app, qtbot, dialogs, state
) -> None:
    import crashing_app as app

    from clarke_desktop.store import AppStore

    cid = _crash(fresh_data, state)
    w = _restart(qtbot)
    try:
        qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=600_000)
        if state == "edited":
            w.flow.offer_recovery()
            qtbot.waitUntil(
                lambda: any("Recover interrupted work" in q for q in dialogs.asked), timeout=30_000
            )
        qtbot.waitUntil(lambda: "pt-001" in w.dashboard.unfinished_buttons, timeout=30_000)
        w.dashboard.unfinished_buttons["pt-001"].click()
        qtbot.waitUntil(lambda: w.flow.consultation_id == cid and w.flow.context is not None, timeout=60_000)
        assert w.consultation.transcript_text() == app.TRANSCRIPT
        assert w.consultation.aside_text() == app.ASIDE
        if state == "edited":
            assert w.nav["letter"].isEnabled()
            w.navigate("letter")
            assert w.current_page() == "review"
            assert any(c.text() == app.EDIT for c in w.review.cards.values())
            assert app.ASIDE in w.review.aside_note.text()
    finally:
        w.runner.shutdown()
        w.backend.close()
    store = AppStore()
    try:
        assert store.consultation(cid).status.value in ("review", "waiting", "processing")
    finally:
        store.close()


def test_after_sigkill_while_writing_the_consultation_is_offered_for_recovery(
    fresh_data, styled_app, qtbot, dialogs
) -> None:
    import crashing_app as app

    from clarke_desktop.store import AppStore

    cid = _crash(fresh_data, "writing")
    store = AppStore()
    assert store.consultation(cid).status.value == "processing"  # left "In progress" by the kill
    store.close()
    w = _restart(qtbot)
    try:
        w.flow.offer_recovery()
        qtbot.waitUntil(lambda: any("1 letter draft" in q for q in dialogs.asked), timeout=30_000)
        qtbot.waitUntil(lambda: AppStore().consultation(cid).status.value == "waiting", timeout=30_000)
        qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=600_000)
        w.flow.open_patient("pt-001")
        qtbot.waitUntil(lambda: w.flow.consultation_id == cid and w.flow.context is not None, timeout=60_000)
        assert (
            w.consultation.transcript_text() == app.TRANSCRIPT
        )  # the text the letter was to be written from
    finally:
        w.runner.shutdown()
        w.backend.close()
