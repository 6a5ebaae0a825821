"""Model directory, provider reporting, missing model, CLI and the export's refusals."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
from builders import LOCAL_REVISION  # noqa: E402  (tests/asr is on sys.path)
from click.testing import CliRunner

from clarke_desktop.asr import session as session_module
from clarke_desktop.asr.base import AsrModelMissing
from clarke_desktop.asr.model_dir import open_model_dir
from clarke_desktop.asr.transcriber import OnnxTranscriber, load_transcriber
from clarke_desktop.cli import cli
from clarke_desktop.files import file_sha256

pytestmark = pytest.mark.export


def test_export_writes_graphs_vocabulary_and_verifiable_metadata(tiny_model):
    meta = json.loads((tiny_model / "metadata.json").read_text())
    assert meta["precisions"] == ["fp32", "fp16", "int8"]
    assert set(meta["sha256"]) == {"model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx", "vocab.json"}
    for name, digest in meta["sha256"].items():
        assert file_sha256(tiny_model / name) == digest
    assert meta["parity"]["fp32"]["max_abs_diff"] < 1e-3
    assert meta["parity"]["fp32"]["argmax_agreement"] == 1.0
    vocab = open_model_dir(tiny_model).vocabulary
    assert len(vocab.tokens) == 512 and vocab.blank_id == 0
    assert vocab.tokens[0] == "<epsilon>" and {1, 2} <= vocab.special_ids
    assert 0 not in vocab.special_ids


def test_export_records_the_snapshot_revision(local_model):
    """local_model was exported from a hub-cache style path snapshots/<commit>/."""
    meta = json.loads((local_model / "metadata.json").read_text())
    assert meta["source_revision"] == LOCAL_REVISION
    assert meta["precisions"] == ["fp32"]


def test_export_refuses_a_graph_that_disagrees_and_writes_nothing(tmp_path, tiny_snapshot, monkeypatch):
    import torch

    from clarke_desktop.asr import export

    real_export = export._export_fp32

    def export_then_perturb(model, path, torch_module):
        real_export(model, path, torch_module)
        with torch.no_grad():  # PyTorch now differs from the written graph
            model.ctc_head.bias += torch.linspace(0, 3, model.ctc_head.bias.numel())

    monkeypatch.setattr(export, "_export_fp32", export_then_perturb)
    out = tmp_path / "asr"
    result = CliRunner().invoke(
        cli,
        ["models", "export-medasr", "--source", str(tiny_snapshot), "--out", str(out), "--precision", "fp32"],
    )
    assert result.exit_code != 0
    assert "disagrees with PyTorch" in result.output
    assert not out.exists()
    assert not list(tmp_path.glob(".asr.partial-*"))


@pytest.mark.parametrize("case", ["not_snapshot", "out_not_empty"])
def test_export_bad_arguments_give_clear_errors(tmp_path, tiny_snapshot, case):
    source, out = tiny_snapshot, tmp_path / "out"
    if case == "not_snapshot":
        source = tmp_path / "empty"
        source.mkdir()
        expected = "not a model snapshot"
    else:
        out.mkdir()
        (out / "keep.txt").write_text("x")
        expected = "already exists"
    result = CliRunner().invoke(cli, ["models", "export-medasr", "--source", str(source), "--out", str(out)])
    assert result.exit_code != 0 and expected in result.output


def test_provider_in_use_is_read_back_from_the_session(tiny_model):
    transcriber = OnnxTranscriber(tiny_model)
    assert transcriber.provider == transcriber.acoustic.session.get_providers()[0]
    assert transcriber.provider in ort.get_available_providers()


def test_cuda_fallback_is_reported_not_silent(tiny_model, monkeypatch, caplog):
    """onnxruntime builds that list CUDA but cannot start it fall back to CPU silently: we say so."""
    real = ort.get_available_providers()
    if "CUDAExecutionProvider" not in real:  # a CPU-only build: make it list CUDA like the GPU build does
        monkeypatch.setattr(
            session_module.ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real]
        )
    with caplog.at_level(logging.WARNING, logger="clarke_desktop.asr"):
        transcriber = OnnxTranscriber(tiny_model)  # auto: asks ONNX Runtime for CUDA first
    if transcriber.provider == "CUDAExecutionProvider":
        pytest.skip("a working CUDA GPU: there is no fallback to provoke")
    assert transcriber.provider == "CPUExecutionProvider"
    assert transcriber.precision == "fp32"  # the CPU graph, not the fp16 one meant for CUDA
    assert transcriber.provider_note and "CUDAExecutionProvider" in transcriber.provider_note
    assert any("CPUExecutionProvider" in r.getMessage() for r in caplog.records)


def test_cuda_requested_without_a_usable_gpu_is_reported(tiny_model):
    transcriber = OnnxTranscriber(tiny_model, device="cuda")
    if transcriber.provider == "CUDAExecutionProvider":
        pytest.skip("a working CUDA GPU")
    assert transcriber.provider == "CPUExecutionProvider"
    assert "CUDA" in transcriber.provider_note and "requested" in transcriber.provider_note


def test_fp16_overflow_switches_to_fp32_and_says_so(tiny_model, speech, monkeypatch):
    transcriber = OnnxTranscriber(tiny_model, device="cpu", precision="fp16")
    real_run = transcriber.acoustic._run
    calls = []

    def overflowing(feats):
        out = real_run(feats)
        if not calls:
            calls.append(1)
            out = out.copy()
            out[3, 5] = np.nan
        return out

    monkeypatch.setattr(transcriber.acoustic, "_run", overflowing)
    result = transcriber.transcribe(speech)
    assert transcriber.precision == "fp32" and "overflowed" in transcriber.provider_note
    exact = OnnxTranscriber(tiny_model, device="cpu", precision="fp32").transcribe(speech)
    assert result.text == exact.text


def test_missing_model_says_what_is_missing_and_how_it_is_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("CLARKE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("platformdirs.site_data_dir", lambda *a, **k: str(tmp_path / "site"))
    with pytest.raises(AsrModelMissing, match="models install") as err:
        load_transcriber()
    assert "export-medasr" in str(err.value) and "type or import" in str(err.value)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "vocab.json").write_text("{}")
    with pytest.raises(AsrModelMissing, match=r"missing metadata.json, model.<fp32\|fp16\|int8>.onnx"):
        load_transcriber(partial)


def test_installed_pack_location_is_found(tmp_path, tiny_model, monkeypatch, speech):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from clarke_desktop import modelpack, paths
    from clarke_desktop.modelpack.signing import public_key_line, trust_public_key

    models = tmp_path / "models"
    shutil.copytree(tiny_model, models / "asr")
    monkeypatch.setenv("CLARKE_MODELS_DIR", str(models))
    monkeypatch.setattr(paths, "machine_config_dir", lambda: tmp_path / "machine-config")
    key = Ed25519PrivateKey.generate()
    trust_public_key(public_key_line(key.public_key()))  # IT trusts its signing key on this machine
    modelpack.record_installed("asr", models / "asr", sign_key=key)  # what IT's install leaves
    transcriber = load_transcriber(device="cpu")
    assert transcriber.model_dir.path == models / "asr"
    assert (
        transcriber.transcribe(speech).text
        == OnnxTranscriber(tiny_model, device="cpu").transcribe(speech).text
    )


def test_cli_transcribe_json(tmp_path, tiny_model, speech):
    wav = tmp_path / "visit.flac"
    sf.write(wav, speech, 16000)
    result = CliRunner().invoke(cli, ["transcribe", str(wav), "--model", str(tiny_model), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    expected = OnnxTranscriber(tiny_model, device="cpu").transcribe(speech)
    assert payload["text"] == expected.text
    assert [(w["text"], w["start_s"], w["end_s"]) for w in payload["words"]] == [
        (w.text, w.start_s, w.end_s) for w in expected.words
    ]
    assert {"confidence"} <= set(payload["words"][0])
    assert payload["provider"] == "CPUExecutionProvider"
    assert payload["audio_duration_s"] == pytest.approx(speech.size / 16000, abs=1e-3)
    assert payload["processing_s"] > 0
    plain = CliRunner().invoke(cli, ["transcribe", str(wav), "--model", str(tiny_model)])
    assert plain.stdout.strip() == expected.text


@pytest.mark.parametrize("problem", ["missing_audio", "not_audio", "missing_model"])
def test_cli_transcribe_errors_exit_non_zero_with_a_message(tmp_path, tiny_model, problem):
    audio, model = tmp_path / "a.wav", tiny_model
    if problem == "not_audio":
        audio.write_text("this is a letter, not a recording")
    elif problem == "missing_model":
        sf.write(audio, np.zeros(16000, np.float32), 16000)
        model = tmp_path / "nowhere"
    result = CliRunner().invoke(cli, ["transcribe", str(audio), "--model", str(model)])
    assert result.exit_code != 0
    assert {
        "missing_audio": "does not exist",
        "not_audio": "not a readable audio file",
        "missing_model": "No speech model",
    }[problem] in result.stderr
    assert "Traceback" not in result.output


def test_runtime_never_imports_torch(tiny_model, tmp_path, speech):
    wav = tmp_path / "s.wav"
    sf.write(wav, speech, 16000)
    code = (
        "import sys; from clarke_desktop.asr.transcriber import load_transcriber;"
        f"t = load_transcriber({str(tiny_model)!r}); t.transcribe_file({str(wav)!r});"
        "import clarke_desktop.cli;"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_status_reports_missing_and_installed_models(tmp_path, tiny_model, monkeypatch):
    from clarke_desktop.asr import asr_status

    monkeypatch.setenv("CLARKE_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("platformdirs.site_data_dir", lambda *a, **k: str(tmp_path / "site"))
    missing = asr_status()
    assert not missing.ready and "models install" in missing.message
    probed = asr_status(tiny_model, probe=True)
    assert probed.ready and probed.precisions == ["fp32", "fp16", "int8"]
    assert probed.provider == "CPUExecutionProvider" and probed.provider in probed.message


def test_io_binding_path_gives_the_same_logits(tiny_model, speech):
    """The GPU path's IO binding code, exercised on the CPU provider."""
    from clarke_desktop.asr.features import log_mel
    from clarke_desktop.asr.model_dir import open_model_dir
    from clarke_desktop.asr.session import OnnxAcousticModel

    feats = log_mel(speech)
    model = open_model_dir(tiny_model)
    plain = OnnxAcousticModel(model, device="cpu", io_binding=False).logits(feats)
    bound = OnnxAcousticModel(model, device="cpu", io_binding=True).logits(feats)
    np.testing.assert_array_equal(plain, bound)
