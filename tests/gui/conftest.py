"""GUI tests run offscreen (run-tests.sh sets QT_QPA_PLATFORM=offscreen; set it here too)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))


def _load_bench_module(name: str) -> None:
    """bench/<name>.py importable by name (bench/ itself stays off sys.path: its fhir.py would shadow
    the fhir.resources package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load_bench_module("gui_probe")  # the event-loop latency probe, shared with bench/gui_latency.py

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def qapp_args() -> list[str]:
    return ["clarke-desktop-tests"]


@pytest.fixture
def styled_app(qapp):
    from clarke_desktop.gui.app import make_application

    return make_application([])


@pytest.fixture
def runner(qapp, qtbot):
    from clarke_desktop.gui.tasks import TaskRunner

    r = TaskRunner()
    yield r
    r.shutdown()


@pytest.fixture(autouse=True)
def dialogs(monkeypatch):
    """A modal dialog offscreen would wait forever for a click: every question is answered Yes and
    every sign-off preview confirmed, and both recorded (a test that cares reads `dialogs.asked` /
    `dialogs.previews` or patches the answer itself)."""
    from PySide6.QtWidgets import QMessageBox

    from clarke_desktop.gui.screens.signoff import SignOffDialog

    class Dialogs:
        asked: list[str] = []
        shown: list[str] = []
        previews: list[object] = []  # sign-off previews confirmed (the dialog's contents)

    record = Dialogs()
    record.asked, record.shown, record.previews = [], [], []
    record.password = ""  # what the clinician types when the preview asks for their password
    record.asked_password = False

    def confirm(_parent, preview, pages, total, ask_password=False):
        record.previews.append((preview, len(pages), total))
        record.asked_password = ask_password
        return record.password if ask_password else ""

    monkeypatch.setattr(SignOffDialog, "confirm", classmethod(lambda cls, *a, **k: confirm(*a, **k)))

    def question(_parent, title, text, *args, **kwargs):
        record.asked.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Yes

    def show(_parent, title, text, *args, **kwargs):
        record.shown.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Ok

    def get_text(_parent, title, text, *args, **kwargs):
        record.asked.append(f"{title}: {text}")
        return record.password, True

    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "warning", show)
    monkeypatch.setattr(QMessageBox, "information", show)
    return record
