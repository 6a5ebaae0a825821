"""Small generated model files, isolated models/cache folders and IT's machine configuration
(a trusted test signing key) for model-pack tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop import paths
from clarke_desktop.modelpack import verify
from clarke_desktop.modelpack.signing import POLICY_FILE, public_key_line, trust_public_key


@pytest.fixture(autouse=True)
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """IT's machine configuration folder (trusted keys, policy) and machine models folder, both
    inside tmp_path; returns the configuration folder. Every test starts a fresh 'session'."""
    config, models = tmp_path / "machine-config", tmp_path / "machine-models"
    monkeypatch.setattr(paths, "machine_config_dir", lambda: config)
    monkeypatch.setattr(paths, "machine_models_dir", lambda: models)
    verify.forget_session_hashes()
    return config


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trusted_key(machine: Path, signing_key: Ed25519PrivateKey) -> Ed25519PrivateKey:
    """`signing_key`, trusted by this machine as IT's key."""
    trust_public_key(public_key_line(signing_key.public_key(), "test key"))
    return signing_key


@pytest.fixture
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted_key: Ed25519PrivateKey) -> Path:
    """Every models directory (override, per-user) and the hash cache inside tmp_path; the test
    signing key trusted."""
    models = tmp_path / "models"
    monkeypatch.setenv("CLARKE_MODELS_DIR", str(models))
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLARKE_CACHE_DIR", str(tmp_path / "cache"))
    return models


@pytest.fixture
def set_policy(machine: Path) -> Callable[..., None]:
    """Writes IT's model-pack policy: set_policy(allow_user_packs=True)."""

    def write(**values: bool) -> None:
        machine.mkdir(parents=True, exist_ok=True)
        (machine / POLICY_FILE).write_text(json.dumps(values))
        (machine / POLICY_FILE).chmod(0o644)  # whatever the umask: IT's files are not group-writable

    return write


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
