"""Small generated model files and isolated models/cache directories for model-pack tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every models directory (override, per-user) and the hash cache inside tmp_path."""
    models = tmp_path / "models"
    monkeypatch.setenv("CLARKE_MODELS_DIR", str(models))
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLARKE_CACHE_DIR", str(tmp_path / "cache"))
    return models


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    """A staging folder as IT would prepare it: asr/ sub-folder, GGUFs loose at the top."""
    root = tmp_path / "stage"
    (root / "asr").mkdir(parents=True)
    (root / "asr" / "medasr.onnx").write_bytes(os.urandom(300_000))
    (root / "asr" / "tokenizer.json").write_text('{"vocab": ["<blank>", "a"]}')
    (root / "medgemma-1.5-4b-it-Q4_K_M.gguf").write_bytes(b"GGUF" + os.urandom(200_000))
    (root / "medgemma-27b-text-it-Q4_K_M.gguf").write_bytes(b"GGUF" + os.urandom(500_000))
    (root / "notes.txt").write_text("not a model")
    return root
