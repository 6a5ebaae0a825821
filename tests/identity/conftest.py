"""The data folder of an installation, private to one test, with nobody signed in at its start or
left signed in after it (the keyring is per process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clarke_desktop.identity import keyring


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(folder))
    monkeypatch.delenv("CLARKE_USER", raising=False)
    monkeypatch.delenv("CLARKE_PASSWORD_FILE", raising=False)
    yield folder
    keyring.forget(folder)
