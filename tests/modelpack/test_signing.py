"""Signed manifests, IT's trusted keys and policy, and the once-per-session full hash before use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop.modelpack import ModelPackError, build_pack, install_pack, locate, verify, verify_role
from clarke_desktop.modelpack.signing import (
    check_signature,
    fingerprint,
    load_policy,
    load_trusted_keys,
    parse_public_key,
    public_key_line,
    sign_manifest,
    trust_public_key,
    write_new_keypair,
)


def test_keypair_files_and_fingerprint_match_ssh_keygen(tmp_path: Path) -> None:
    pub_path, line = write_new_keypair(tmp_path / "k", "IT models")
    assert pub_path == tmp_path / "k.pub" and pub_path.read_text() == line + "\n"
    assert line.startswith("ssh-ed25519 ") and line.endswith(" IT models")
    if os.name == "posix":
        assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    if shutil.which("ssh-keygen"):
        out = subprocess.run(["ssh-keygen", "-lf", str(pub_path)], capture_output=True, text=True, check=True)
        assert fingerprint(parse_public_key(line)) == out.stdout.split()[1]
    with pytest.raises(ModelPackError, match="already exists"):
        write_new_keypair(tmp_path / "k")


def test_signature_covers_the_exact_bytes(
    machine: Path, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    trust_public_key(public_key_line(signing_key.public_key()))
    data = b'{"role": "asr"}\n'
    sig = tmp_path / "manifest.sig"
    sig.write_bytes(sign_manifest(signing_key, data))
    assert check_signature(tmp_path / "manifest.json", data, sig).ok
    # Even a change JSON would not notice (whitespace) is a different manifest.
    assert not check_signature(tmp_path / "manifest.json", data.replace(b" ", b"  "), sig).ok
    document = json.loads(sig.read_text())
    document["signature"] = "AAAA"
    sig.write_text(json.dumps(document))
    assert "64 bytes" in check_signature(tmp_path / "manifest.json", data, sig).detail


def test_policy_may_allow_unsigned_packs(
    stage: Path, tmp_path: Path, models_env: Path, set_policy: Callable[..., None]
) -> None:
    build_pack(stage, tmp_path / "pack", roles=["asr"])
    set_policy(allow_unsigned_packs=True)
    install_pack(tmp_path / "pack")
    assert locate("asr") == models_env / "asr"
    assert "allowed by IT policy" in (verify_role("asr").signature or "")
    set_policy()  # IT withdraws the exception: the next load refuses it
    assert locate("asr") is None


def test_an_invalid_policy_means_the_safe_defaults(machine: Path, set_policy: Callable[..., None]) -> None:
    set_policy(allow_unsigned_packs=True, allow_everything=True)
    policy = load_policy()
    assert not policy.allow_unsigned_packs and "unknown setting" in policy.problems[0]
    (machine / "model-policy.json").write_text("{not json")
    assert not load_policy().allow_unsigned_packs and load_policy().problems


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_a_key_file_others_can_write_is_not_trusted(
    stage: Path, tmp_path: Path, models_env: Path, trusted_key: Ed25519PrivateKey, machine: Path
) -> None:
    build_pack(stage, tmp_path / "pack", roles=["asr"], sign_key=trusted_key)
    install_pack(tmp_path / "pack")
    assert locate("asr") == models_env / "asr"
    (key_file,) = (machine / "trusted_keys").iterdir()
    key_file.chmod(0o666)
    trusted = load_trusted_keys()
    assert not trusted.keys and "can be written by other accounts" in trusted.problems[0]
    assert locate("asr") is None


def test_a_key_removed_by_it_is_no_longer_trusted_mid_session(
    stage: Path, tmp_path: Path, models_env: Path, trusted_key: Ed25519PrivateKey, machine: Path
) -> None:
    build_pack(stage, tmp_path / "pack", roles=["asr"], sign_key=trusted_key)
    install_pack(tmp_path / "pack")
    assert locate("asr") == models_env / "asr"
    shutil.rmtree(machine / "trusted_keys")
    assert locate("asr") is None


def test_files_are_hashed_once_per_session_and_again_when_they_change(
    stage: Path,
    tmp_path: Path,
    models_env: Path,
    trusted_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build_pack(stage, tmp_path / "pack", sign_key=trusted_key)
    install_pack(tmp_path / "pack")
    hashed: list[str] = []
    real = verify.file_sha256

    def counting(path: Path, progress: object = None) -> str:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(verify, "file_sha256", counting)
    assert locate("asr") == models_env / "asr"
    assert sorted(hashed) == ["medasr.onnx", "tokenizer.json"]  # in full, never from the disk cache
    assert locate("asr") == models_env / "asr"
    assert len(hashed) == 2  # the same files, unchanged: not hashed again this session
    onnx = models_env / "asr" / "medasr.onnx"
    st = onnx.stat()
    os.utime(onnx, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert locate("asr") == models_env / "asr"
    assert hashed[2:] == ["medasr.onnx"]
    verify.forget_session_hashes()  # a new session hashes everything again
    assert locate("asr") == models_env / "asr" and len(hashed) == 5


def test_a_pack_whose_index_disagrees_with_its_signed_manifest_is_refused(
    stage: Path, tmp_path: Path, models_env: Path, trusted_key: Ed25519PrivateKey
) -> None:
    pack = tmp_path / "pack"
    build_pack(stage, pack, roles=["asr"], sign_key=trusted_key)
    index = json.loads((pack / "pack.json").read_text())
    index["roles"][0]["min_vram_gb"] = 0.1
    (pack / "pack.json").write_text(json.dumps(index))
    with pytest.raises(ModelPackError, match="does not agree"):
        install_pack(pack)
