"""pack -> install -> verify round trip, refusals, and the quick-check cache."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop import modelpack
from clarke_desktop.files import file_sha256
from clarke_desktop.modelpack import ModelPackError, build_pack, install_pack, locate, verify_role


@pytest.fixture
def _pack(trusted_key: Ed25519PrivateKey) -> Callable[[Path, Path], Path]:
    """Builds a pack signed with the machine's trusted test key: _pack(stage, where) -> pack dir."""

    def make(stage: Path, tmp_path: Path) -> Path:
        out = tmp_path / "pack"
        build_pack(stage, out, sign_key=trusted_key)
        return out

    return make


def test_pack_records_every_file_with_size_and_sha256(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    manifest = json.loads((pack / "pack.json").read_text())
    by_role = {r["role"]: r for r in manifest["roles"]}
    assert set(by_role) == {"asr", "ehr_agent", "letter_writer"}
    asr_files = {f["path"]: f for f in by_role["asr"]["files"]}
    assert set(asr_files) == {"medasr.onnx", "tokenizer.json"}
    onnx = stage / "asr" / "medasr.onnx"
    assert asr_files["medasr.onnx"]["sha256"] == file_sha256(onnx)
    assert asr_files["medasr.onnx"]["size"] == onnx.stat().st_size
    assert [f["path"] for f in by_role["letter_writer"]["files"]] == ["medgemma-27b-text-it-Q4_K_M.gguf"]
    assert "Health AI Developer Foundations" in by_role["letter_writer"]["licence"]
    assert not (tmp_path / "pack.partial").exists()
    assert not (pack / "ehr_agent" / "notes.txt").exists()


def test_install_then_locate_and_full_verify(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    installed = install_pack(pack)
    assert set(installed) == set(modelpack.ROLES)
    for role in modelpack.ROLES:
        assert locate(role) == models_env / role
        assert (models_env / role / "manifest.json").is_file()
        result = verify_role(role, full=True)
        assert result.ok, result.reason
        assert all(f.detail == "sha256 verified" for f in result.files)
    gguf = models_env / "ehr_agent" / "medgemma-1.5-4b-it-Q4_K_M.gguf"
    assert gguf.read_bytes() == (stage / "medgemma-1.5-4b-it-Q4_K_M.gguf").read_bytes()
    assert not [p for p in models_env.iterdir() if p.name.startswith(".")]  # no staging left


def test_tampered_file_is_refused_named_and_nothing_installed(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    target = pack / "letter_writer" / "medgemma-27b-text-it-Q4_K_M.gguf"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped
    target.write_bytes(bytes(data))
    with pytest.raises(ModelPackError) as err:
        install_pack(pack)
    assert str(target) in str(err.value)
    assert "sha256" in str(err.value)
    assert not models_env.exists() or not any(models_env.iterdir())  # all-or-nothing, no staging left


def test_truncated_file_is_refused_and_named(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    target = pack / "asr" / "medasr.onnx"
    size = target.stat().st_size
    with open(target, "r+b") as fh:
        fh.truncate(size - 10)
    with pytest.raises(ModelPackError, match="truncated") as err:
        install_pack(pack)
    assert str(target) in str(err.value)
    assert f"{size - 10} of {size} bytes" in str(err.value)


def test_failed_reinstall_keeps_previous_install(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    install_pack(pack)
    before = file_sha256(models_env / "asr" / "medasr.onnx")
    (pack / "asr" / "tokenizer.json").write_text('{"vocab": ["tampered"]}')
    with pytest.raises(ModelPackError, match="tokenizer.json"):
        install_pack(pack)
    assert file_sha256(models_env / "asr" / "medasr.onnx") == before
    assert verify_role("asr", full=True).ok


def test_pack_manifest_cannot_escape_the_models_dir(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    pack = _pack(stage, tmp_path)
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["roles"][0]["files"][0]["path"] = "../../evil.sh"
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match="unsafe file path"):
        install_pack(pack)
    manifest["roles"][0]["files"][0]["path"] = "medasr.onnx"
    manifest["roles"][0]["role"] = "../etc"
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match="unknown model role"):
        install_pack(pack)


def test_pack_rejects_a_non_gguf_download(stage: Path, tmp_path: Path, models_env: Path) -> None:
    (stage / "medgemma-27b-text-it-Q4_K_M.gguf").write_text("<html>Access denied</html>")
    with pytest.raises(ModelPackError, match="not a GGUF file"):
        build_pack(stage, tmp_path / "pack")
    assert not (tmp_path / "pack").exists() and not (tmp_path / "pack.partial").exists()


def test_pack_names_a_missing_required_file(tmp_path: Path, models_env: Path) -> None:
    (tmp_path / "stage" / "asr").mkdir(parents=True)
    (tmp_path / "stage" / "asr" / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelPackError, match=r"\*\.onnx"):
        build_pack(tmp_path / "stage", tmp_path / "pack", roles=["asr"])


def test_quick_check_cache_is_invalidated_by_mtime_change(
    stage: Path, tmp_path: Path, models_env: Path, _pack: Callable[[Path, Path], Path]
) -> None:
    install_pack(_pack(stage, tmp_path))
    onnx = models_env / "asr" / "medasr.onnx"
    assert verify_role("asr").ok

    # Same size, different bytes, new mtime: the cached hash no longer applies, quick check refuses.
    original = onnx.read_bytes()
    onnx.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    quick = verify_role("asr")
    assert not quick.ok
    assert [f.status for f in quick.files if not f.ok] == ["changed_unverified"]
    assert locate("asr") is None
    full = verify_role("asr", full=True)
    assert [f.status for f in full.files if not f.ok] == ["hash_mismatch"]

    # Original bytes back but mtime still changed: refused until a full verify re-hashes and caches it.
    onnx.write_bytes(original)
    st = onnx.stat()
    os.utime(onnx, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert not verify_role("asr").ok
    assert verify_role("asr", full=True).ok
    assert verify_role("asr").ok
    assert [f.detail for f in verify_role("asr").files][0].startswith("quick check: sha256 verified earlier")
    assert locate("asr") == models_env / "asr"


def test_quick_check_trusts_install_stamp_for_another_account(
    stage: Path,
    tmp_path: Path,
    models_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    _pack: Callable[[Path, Path], Path],
) -> None:
    install_pack(_pack(stage, tmp_path))
    monkeypatch.setenv("CLARKE_CACHE_DIR", str(tmp_path / "other-user-cache"))  # empty hash cache
    result = verify_role("ehr_agent")
    assert result.ok
    assert (
        result.files[0].detail == "quick check: unchanged since installation (size and mtime; not re-hashed)"
    )


def test_truncated_installed_file_fails_quick_check_and_locate_logs(
    stage: Path,
    tmp_path: Path,
    models_env: Path,
    caplog: pytest.LogCaptureFixture,
    _pack: Callable[[Path, Path], Path],
) -> None:
    install_pack(_pack(stage, tmp_path))
    gguf = models_env / "letter_writer" / "medgemma-27b-text-it-Q4_K_M.gguf"
    with open(gguf, "r+b") as fh:
        fh.truncate(1000)
    result = verify_role("letter_writer")
    assert result.files[0].status == "truncated"
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate("letter_writer") is None
    assert "truncated" in caplog.text and str(gguf) in caplog.text


def test_directory_without_manifest_is_not_used(models_env: Path, trusted_key: Ed25519PrivateKey) -> None:
    (models_env / "asr").mkdir(parents=True)
    (models_env / "asr" / "model.onnx").write_bytes(b"x")
    assert locate("asr") is None
    assert "manifest.json" in verify_role("asr").reason
    modelpack.record_installed("asr", models_env / "asr")  # unsigned: still not used
    assert locate("asr") is None
    assert "is not signed" in verify_role("asr").reason
    modelpack.record_installed("asr", models_env / "asr", sign_key=trusted_key)
    assert locate("asr") == models_env / "asr"
    assert (
        verify_role("asr").signature is not None and "signed by trusted key" in verify_role("asr").signature
    )


def test_not_installed(models_env: Path) -> None:
    result = verify_role("letter_writer")
    assert not result.installed and not result.ok
    assert "not installed" in result.reason


def test_per_machine_install_is_readable_by_every_account_and_wins_over_a_per_user_one(
    stage: Path,
    tmp_path: Path,
    models_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    _pack: Callable[[Path, Path], Path],
    set_policy: Callable[..., None],
) -> None:
    from clarke_desktop import paths

    machine, user = paths.machine_models_dir(), paths.user_models_dir()
    monkeypatch.delenv("CLARKE_MODELS_DIR")
    installed = install_pack(_pack(stage, tmp_path), scope="machine")
    assert installed["asr"] == machine / "asr"
    if os.name == "posix":
        for p in [machine / "asr", *(machine / "asr").rglob("*")]:
            assert p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644), p
    assert locate("asr") == machine / "asr"
    again = _pack(stage, tmp_path / "again")
    with pytest.raises(ModelPackError, match="per-user model packs are not allowed"):
        install_pack(again, scope="user")
    set_policy(allow_user_packs=True)
    install_pack(again, scope="user")
    assert locate("asr") == machine / "asr"  # IT's machine folder is searched first
    shutil.rmtree(machine / "asr")
    assert locate("asr") == user / "asr"  # and a per-user pack is used only where IT allows it


def test_a_role_that_cannot_be_placed_puts_back_the_roles_already_swapped(
    stage: Path,
    tmp_path: Path,
    models_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    _pack: Callable[[Path, Path], Path],
    trusted_key: Ed25519PrivateKey,
) -> None:
    """No mixed install: when the last role cannot be swapped in (Windows keeps a loaded model
    locked), the roles already swapped return to their previous version."""
    install_pack(_pack(stage, tmp_path))
    before = {p.relative_to(models_env): file_sha256(p) for p in models_env.rglob("*") if p.is_file()}
    (stage / "asr" / "medasr.onnx").write_bytes(os.urandom(300_000))  # a new version of every role
    (stage / "medgemma-1.5-4b-it-Q4_K_M.gguf").write_bytes(b"GGUF" + os.urandom(200_000))
    (stage / "medgemma-27b-text-it-Q4_K_M.gguf").write_bytes(b"GGUF" + os.urandom(500_000))
    new_pack = tmp_path / "pack2"
    build_pack(stage, new_pack, sign_key=trusted_key)
    rename = Path.rename

    def locked(self: Path, target: Path | str) -> Path:
        if Path(target) == models_env / "letter_writer" and self.name.startswith(".staging-"):
            raise PermissionError(13, "The process cannot access the file", str(target))
        return rename(self, target)

    with monkeypatch.context() as patched, pytest.raises(ModelPackError, match="nothing was changed"):
        patched.setattr(Path, "rename", locked)
        install_pack(new_pack)
    after = {p.relative_to(models_env): file_sha256(p) for p in models_env.rglob("*") if p.is_file()}
    assert after == before
    for role in modelpack.ROLES:
        result = verify_role(role, full=True)
        assert result.ok, (role, result.reason)
    assert not [p for p in models_env.iterdir() if p.name.startswith(".")]  # nothing left aside


def test_a_manifest_listing_no_files_verifies_nothing(models_env: Path) -> None:
    """`"files": []` verified trivially, and the loader then took any GGUF beside it, unverified."""
    import json

    role_dir = models_env / "letter_writer"
    role_dir.mkdir(parents=True)
    (role_dir / "planted.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    (role_dir / "manifest.json").write_text(json.dumps({
        "role": "letter_writer", "name": "x", "runtime": "llama.cpp", "precision": "q4", "min_vram_gb": 1,
        "licence": "x", "licence_url": "x", "notice": "x", "files": [],
    }))  # fmt: skip
    result = verify_role("letter_writer")
    assert not result.ok and "lists no files" in result.reason
    assert locate("letter_writer") is None
