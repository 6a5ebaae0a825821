"""`clarke-desktop doctor`: JSON shape, statuses on this machine, and the checks' failure paths."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop import doctor
from clarke_desktop.cli import cli
from clarke_desktop.modelpack import build_pack, install_pack

REPO = Path(__file__).resolve().parents[2]

EXPECTED_IDS = [
    "os",
    "cpu",
    "ram",
    "gpu",
    "onnxruntime",
    "llama_cpp",
    "models",
    "vram",
    "audio",
    "data_dir",
    "fhir_db",
    "app_db",
]


def _doctor_json(*args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(cli, ["doctor", "--json", *args])
    return r.exit_code, json.loads(r.stdout)


def test_json_shape_and_every_non_ok_check_has_a_fix(models_env: Path) -> None:
    code, report = _doctor_json()
    assert [c["id"] for c in report["checks"]] == EXPECTED_IDS
    for c in report["checks"]:
        assert set(c) == {"id", "title", "status", "detail", "fix", "data"}
        assert c["status"] in ("ok", "warn", "fail")
        assert c["detail"]
        if c["status"] != "ok":
            assert c["fix"], c
    assert report["summary"] == {
        s: sum(c["status"] == s for c in report["checks"]) for s in ("ok", "warn", "fail")
    }
    assert report["status"] == (
        "fail" if report["summary"]["fail"] else "warn" if report["summary"]["warn"] else "ok"
    )
    assert code == (1 if report["status"] == "fail" else 0)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
def test_this_machine_without_gpu_warns_with_fixes(models_env: Path) -> None:
    _, report = _doctor_json()
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["gpu"]["status"] == "warn" and "CPU" in checks["gpu"]["fix"]
    llama_cpp = pytest.importorskip("llama_cpp")
    expected = "ok" if llama_cpp.llama_supports_gpu_offload() else "warn"
    assert checks["llama_cpp"]["status"] == expected
    assert checks["llama_cpp"]["data"]["gpu_offload"] is (expected == "ok")
    if expected == "warn":
        assert "GGML_CUDA=on" in checks["llama_cpp"]["fix"]
    import onnxruntime

    listed = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    ort_check = checks["onnxruntime"]
    if listed:  # listed is not enough: OK only when a real session starts on it
        session = onnxruntime.InferenceSession(
            str(REPO / "resources" / "diagnostics" / "probe.onnx"),
            providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        )
        starts = session.get_providers()[0] == "CUDAExecutionProvider"
        assert ort_check["data"]["cuda_starts"] is starts
        assert ort_check["status"] == ("ok" if starts else "warn")
        if not starts:
            assert "does not start here" in ort_check["detail"]
    else:
        assert ort_check["status"] == "warn"
    assert checks["models"]["status"] == "warn" and "not installed" in checks["models"]["detail"]
    assert checks["models"]["data"]["embedded_default_present"] is True
    assert checks["fhir_db"]["status"] == "ok"


def test_fake_nvidia_smi_is_parsed_and_vram_compared(
    tmp_path: Path, stage: Path, models_env: Path, trusted_key: Ed25519PrivateKey
) -> None:
    # A stand-in nvidia-smi (this machine has no GPU) to test the parsing and VRAM logic around it.
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA RTX A4000, 550.54.15, 16376, 15990'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    gpus = doctor.query_nvidia_smi(str(fake))
    assert gpus == [doctor.Gpu("NVIDIA RTX A4000", "550.54.15", 16376, 15990)]
    assert doctor.check_gpu(gpus, None).status == "ok"

    build_pack(stage, tmp_path / "pack", sign_key=trusted_key)
    install_pack(tmp_path / "pack")
    _, installed = doctor.check_models()
    vram = doctor.check_vram(gpus, installed)
    assert vram.status == "warn" and "letter_writer (needs 20 GB)" in vram.detail
    big = [doctor.Gpu("NVIDIA RTX 6000 Ada", "550.54.15", 49140, 49000)]
    assert doctor.check_vram(big, installed).status == "ok"
    assert doctor.check_vram([], installed).status == "warn"


def test_failing_nvidia_smi_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\nexit 9\n"
    )
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match="could not communicate"):
        doctor.query_nvidia_smi(str(fake))
    assert doctor.check_gpu([], "could not communicate").status == "warn"


def test_tampered_model_makes_doctor_fail(
    stage: Path, tmp_path: Path, models_env: Path, trusted_key: Ed25519PrivateKey
) -> None:
    build_pack(stage, tmp_path / "pack", sign_key=trusted_key)
    install_pack(tmp_path / "pack")
    victim = models_env / "asr" / "medasr.onnx"
    with open(victim, "r+b") as fh:
        fh.truncate(10)
    code, report = _doctor_json()
    models = next(c for c in report["checks"] if c["id"] == "models")
    assert models["status"] == "fail" and "truncated" in models["detail"] and str(victim) in models["detail"]
    assert code == 1


def test_fhir_database_integrity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "fhir.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE resource (id TEXT PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO resource VALUES (?, ?)", [(str(i), "x" * 500) for i in range(2000)])
    conn.commit()
    conn.close()
    monkeypatch.setenv("CLARKE_FHIR_DB", str(db))
    assert doctor.check_database("fhir_db", "FHIR", db).status == "ok"

    data = bytearray(db.read_bytes())
    data[4096 * 3 : 4096 * 3 + 64] = b"\xff" * 64  # corrupt a b-tree page
    db.write_bytes(bytes(data))
    broken = doctor.check_database("fhir_db", "FHIR", db)
    assert broken.status == "fail" and str(db) in broken.detail and "backup" in broken.fix

    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database" * 100)
    junk = doctor.check_database("fhir_db", "FHIR", tmp_path / "junk.sqlite3")
    assert junk.status == "fail"


def test_the_report_for_it_is_exported_as_json_and_text(tmp_path: Path) -> None:
    checks = doctor.run_checks()
    json_path, text_path = doctor.export_report(checks, tmp_path)
    exported = json.loads(json_path.read_text(encoding="utf-8"))
    assert [c["id"] for c in exported["checks"]] == [c.id for c in checks]
    text = text_path.read_text(encoding="utf-8")
    assert all(c.title in text for c in checks) and "warning(s)" in text
    result = CliRunner().invoke(cli, ["doctor"])

    def titles(out: str) -> list[str]:  # details (free disk space, say) may move between two runs
        return [line.split(":")[0][7:] for line in out.splitlines() if line.startswith("[")]

    assert titles(result.output) == titles(text) == [c.title for c in checks]  # as `doctor` prints
