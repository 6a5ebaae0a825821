"""GUI tests run offscreen (run-tests.sh sets QT_QPA_PLATFORM=offscreen; set it here too)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

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
