from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clarke_desktop.store import AppStore  # noqa: E402


@pytest.fixture
def store(tmp_path: Path):
    s = AppStore(tmp_path / "clarke.sqlite3")
    yield s
    s.close()
