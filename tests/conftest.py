"""Shared test set-up: every test run gets its own data directory, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clinical_fixtures import *  # noqa: F403  (demo FHIR store and embedded-engine fixtures)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("clarke-data")
    os.environ["CLARKE_DATA_DIR"] = str(data)
    os.environ.setdefault("CLARKE_CACHE_DIR", str(tmp_path_factory.mktemp("clarke-cache")))
    os.environ.pop("CLARKE_FHIR_DB", None)
    os.environ.pop("CLARKE_MODELS_DIR", None)
    return data


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
