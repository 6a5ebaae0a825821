"""Model-pack attacks by someone with a local account (issue #16): one test per attack, each of which
worked before packs were signed and hashed in full before use. Small generated files, no models.

The app's view is `modelpack.locate(role)`, what every loader calls before it opens a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop import paths
from clarke_desktop.modelpack import (
    ModelPackError,
    build_pack,
    install_pack,
    locate,
    record_installed,
    verify_role,
)
from clarke_desktop.modelpack.hashing import HashCache
from clarke_desktop.modelpack.manifest import read_role_manifest
from clarke_desktop.modelpack.signing import public_key_line, sign_manifest, trust_public_key
from clarke_desktop.modelpack.verify import forget_session_hashes

ROLE = "letter_writer"
GGUF = "medgemma-27b-text-it-Q4_K_M.gguf"


@pytest.fixture
def it_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ed25519PrivateKey:
    """A workstation as IT set it up: machine folders inside tmp_path, IT's key trusted, the default
    policy (no unsigned packs, no per-user packs), no CLARKE_MODELS_DIR. Returns IT's private key."""
    config, machine_models = tmp_path / "etc", tmp_path / "machine-models"
    monkeypatch.setattr(paths, "machine_config_dir", lambda: config)
    monkeypatch.setattr(paths, "machine_models_dir", lambda: machine_models)
    monkeypatch.delenv("CLARKE_MODELS_DIR", raising=False)
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.setenv("CLARKE_CACHE_DIR", str(tmp_path / "user-cache"))
    forget_session_hashes()
    key = Ed25519PrivateKey.generate()
    trust_public_key(public_key_line(key.public_key(), "IT"))
    return key


def _stage(tmp_path: Path, name: str, payload: bytes) -> Path:
    stage = tmp_path / name
    stage.mkdir()
    (stage / GGUF).write_bytes(b"GGUF" + payload)
    return stage


def _it_installs(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """IT's signed pack, installed per machine; returns the installed role folder."""
    pack = tmp_path / "it-pack"
    build_pack(_stage(tmp_path, "it-stage", os.urandom(100_000)), pack, roles=[ROLE], sign_key=key)
    return install_pack(pack, scope="machine")[ROLE]


def _reason(caplog: pytest.LogCaptureFixture) -> str:
    return " ".join(r.getMessage() for r in caplog.records)


def test_same_size_tamper_with_reset_mtime_and_forged_hash_cache_is_refused(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    role_dir = _it_installs(tmp_path, it_key)
    assert locate(ROLE) == role_dir
    gguf = role_dir / GGUF
    st = gguf.stat()
    expected = read_role_manifest(role_dir).files[0].sha256

    # Mid-session: swap in other bytes of the same size (a new file, as an editor or copy would
    # leave), then set its mtime back.
    evil = gguf.with_name("evil.tmp")
    evil.write_bytes(b"GGUF" + os.urandom(st.st_size - 4))
    os.replace(evil, gguf)
    os.utime(gguf, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "does not match the manifest" in _reason(caplog)

    # Next session: in place this time, mtime reset and the user's hash cache forged to vouch for it.
    forget_session_hashes()
    caplog.clear()
    with open(gguf, "r+b") as fh:
        fh.seek(10)
        fh.write(b"tampered")
    os.utime(gguf, ns=(st.st_atime_ns, st.st_mtime_ns))
    HashCache().put(gguf, expected)
    assert verify_role(ROLE).ok  # the quick check (display only) is fooled, as documented
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None  # what loaders call: the file is hashed in full
    assert "does not match the manifest" in _reason(caplog)
    assert not verify_role(ROLE, full=True).ok


def test_user_pack_shadowing_the_machine_pack_is_ignored(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    machine_dir = _it_installs(tmp_path, it_key)
    # A pack in the per-user folder, even one validly signed by IT's key (say, an older model).
    user_dir = paths.user_models_dir() / ROLE
    shutil.copytree(_stage(tmp_path, "user-stage", os.urandom(100_000)), user_dir)
    record_installed(ROLE, user_dir, sign_key=it_key)
    assert locate(ROLE) == machine_dir
    assert verify_role(ROLE).directory == machine_dir

    shutil.rmtree(machine_dir)  # even with no machine pack at all, the per-user one is not used
    forget_session_hashes()
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "per-user model packs are not allowed" in _reason(caplog)
    assert "ignored" in verify_role(ROLE).reason


def test_unsigned_manifest_is_refused(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    role_dir = paths.machine_models_dir() / ROLE
    shutil.copytree(_stage(tmp_path, "stage", os.urandom(100_000)), role_dir)
    record_installed(ROLE, role_dir)  # a manifest with every sha256 right, but no signature
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "is not signed" in _reason(caplog)

    pack = tmp_path / "unsigned-pack"
    build_pack(_stage(tmp_path, "stage2", os.urandom(100_000)), pack, roles=[ROLE])
    with pytest.raises(ModelPackError, match="is not signed"):
        install_pack(pack, scope="machine")


def test_manifest_edited_after_signing_is_refused(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    role_dir = _it_installs(tmp_path, it_key)
    # The attacker's own model, and the manifest edited to describe it exactly.
    evil = b"GGUF" + os.urandom(150_000)
    (role_dir / GGUF).write_bytes(evil)
    manifest = json.loads((role_dir / "manifest.json").read_text())
    manifest["files"][0]["size"] = len(evil)
    manifest["files"][0]["sha256"] = hashlib.sha256(evil).hexdigest()
    (role_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "changed after it was signed" in _reason(caplog)

    # The same edit in a pack (its manifest and pack.json both) is refused at install.
    pack = tmp_path / "pack"
    build_pack(_stage(tmp_path, "stage2", os.urandom(100_000)), pack, roles=[ROLE], sign_key=it_key)
    (pack / ROLE / GGUF).write_bytes(evil)
    role_manifest = json.loads((pack / ROLE / "manifest.json").read_text())
    role_manifest["files"][0].update(size=manifest["files"][0]["size"], sha256=manifest["files"][0]["sha256"])
    (pack / ROLE / "manifest.json").write_text(json.dumps(role_manifest, indent=2))
    pack_json = json.loads((pack / "pack.json").read_text())
    pack_json["roles"][0]["files"][0].update(role_manifest["files"][0])
    (pack / "pack.json").write_text(json.dumps(pack_json))
    with pytest.raises(ModelPackError, match="changed after it was signed"):
        install_pack(pack, scope="machine")


def test_signature_by_an_untrusted_key_is_refused(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = Ed25519PrivateKey.generate()
    role_dir = paths.machine_models_dir() / ROLE
    shutil.copytree(_stage(tmp_path, "stage", os.urandom(100_000)), role_dir)
    record_installed(ROLE, role_dir, sign_key=attacker)  # well formed and signed, by the wrong key
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "which this machine does not trust" in _reason(caplog)

    pack = tmp_path / "attacker-pack"
    build_pack(_stage(tmp_path, "stage2", os.urandom(100_000)), pack, roles=[ROLE], sign_key=attacker)
    with pytest.raises(ModelPackError, match="does not trust"):
        install_pack(pack, scope="machine")


def test_empty_manifest_is_refused_even_when_signed(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    """`"files": []` verified trivially and the loader then took any GGUF beside it."""
    role_dir = paths.machine_models_dir() / ROLE
    role_dir.mkdir(parents=True)
    (role_dir / "planted.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    data = json.dumps({
        "role": ROLE, "name": "x", "runtime": "llama.cpp", "precision": "q4", "min_vram_gb": 1,
        "licence": "x", "licence_url": "x", "notice": "x", "files": [],
    }).encode()  # fmt: skip
    (role_dir / "manifest.json").write_bytes(data)
    (role_dir / "manifest.sig").write_bytes(sign_manifest(it_key, data))  # even IT's key cannot make it valid
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "lists no files" in _reason(caplog)


def test_a_file_planted_beside_a_signed_pack_is_refused(
    tmp_path: Path, it_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    """A loader picks files by name or pattern (`*.gguf`, `model.int8.onnx`): a file the manifest
    does not list must never sit beside the verified ones."""
    role_dir = _it_installs(tmp_path, it_key)
    (role_dir / "sub").mkdir()
    (role_dir / "sub" / "other.gguf").write_bytes(b"GGUF" + os.urandom(100))
    with caplog.at_level("WARNING", logger="clarke_desktop.modelpack"):
        assert locate(ROLE) is None
    assert "not listed in the model pack's manifest" in _reason(caplog)
    shutil.rmtree(role_dir / "sub")
    assert locate(ROLE) == role_dir
