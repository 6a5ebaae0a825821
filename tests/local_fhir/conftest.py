"""Fixtures for local_fhir: a fresh store per test and small resource builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_fhir import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "fhir.sqlite3")
    yield s
    s.close()
