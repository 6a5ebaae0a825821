"""Export a local google/medasr snapshot (`LasrForCTC`) to an ONNX model directory.

The one step that needs torch and transformers (the `export` extra); IT runs it once on a connected
machine. Every graph is checked against PyTorch on probe inputs and the directory is only written
when all of them agree (written to a temporary sibling first, then renamed).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import numpy as np

from clarke_desktop.asr import features
from clarke_desktop.asr.model_dir import (
    FORMAT_VERSION,
    METADATA_FILE,
    PRECISIONS,
    VOCAB_FILE,
    Vocabulary,
    graph_file,
)
from clarke_desktop.errors import ClarkeError
from clarke_desktop.files import file_sha256

log = logging.getLogger("clarke_desktop.asr.export")

OPSET = 17
# Probe lengths (seconds) differ from the tracing length so the dynamic time axis is exercised.
PROBE_SECONDS = (0.5, 3.7, 11.3)
TRACE_SECONDS = 2.0


class Tolerance(TypedDict):
    max_abs_diff: float | None
    min_argmax_agreement: float


class ParityFigures(TypedDict):
    max_abs_diff: float
    argmax_agreement: float
    frames: int
    probe_seconds: list[float]
    tolerance: Tolerance


# What "agrees" means per precision: max |logit difference| and the share of frames whose
# argmax token is the same. Reduced precisions are judged on the decision, not the exact value.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": {"max_abs_diff": 1e-3, "min_argmax_agreement": 0.999},
    "fp16": {"max_abs_diff": None, "min_argmax_agreement": 0.98},
    "int8": {"max_abs_diff": None, "min_argmax_agreement": 0.90},
}
# Tokens that are never text, whatever the tokenizer marks as special.
_NON_TEXT_TOKENS = ("<epsilon>", "</s>", "<s>", "<unk>", "<pad>", "<blank>")


class ExportError(ClarkeError):
    """The snapshot cannot be exported; the message says why and what to do."""


class ParityError(ExportError):
    """An exported graph disagrees with PyTorch; nothing was written."""


@dataclass
class ExportResult:
    out: Path
    precisions: list[str]
    parity: dict[str, ParityFigures]


def _require_export_extra() -> tuple[ModuleType, ModuleType]:
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ExportError(
            "Exporting MedASR needs torch and transformers: pip install 'clarke-desktop[export]'"
        ) from exc
    return torch, transformers


def probe_audio(seconds: float, seed: int) -> np.ndarray:
    """Deterministic speech-like probe: gliding harmonics with syllable-rate envelope plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * features.SAMPLE_RATE)) / features.SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / features.SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) ** 2
    audio = 0.2 * voiced * envelope + 0.02 * rng.standard_normal(t.size)
    probe: np.ndarray = (audio / max(1e-6, np.abs(audio).max()) * 0.8).astype(np.float32)
    return probe


def _source_revision(source: Path, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if re.fullmatch(r"[0-9a-f]{40}", source.resolve().name):  # hub cache: snapshots/<commit>/
        return source.resolve().name
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    commit: str | None = config.get("_commit_hash")
    return commit


def _vocabulary(source: Path, vocab_size: int, blank_id: int, transformers: ModuleType) -> Vocabulary:
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    except Exception as exc:
        raise ExportError(f"Cannot load the tokenizer from {source}: {exc}") from exc
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    if any(token is None for token in tokens):
        raise ExportError(f"The tokenizer in {source} has fewer than {vocab_size} tokens (the model's vocab)")
    special = set(tokenizer.all_special_ids) | {i for i, tok in enumerate(tokens) if tok in _NON_TEXT_TOKENS}
    special |= {i for i, tok in enumerate(tokens) if re.fullmatch(r"<extra_id_\d+>", tok)}
    special.discard(blank_id)
    return Vocabulary(tokens=list(tokens), blank_id=blank_id, special_ids=frozenset(special))


def _check_front_end(source: Path) -> None:
    """Refuse a snapshot whose preprocessor differs from the numpy front end the app uses."""
    path = source / "preprocessor_config.json"
    if not path.is_file():
        return
    cfg = json.loads(path.read_text(encoding="utf-8"))
    expected = {
        "feature_size": features.N_MELS,
        "sampling_rate": features.SAMPLE_RATE,
        "hop_length": features.HOP_LENGTH,
        "n_fft": features.N_FFT,
        "win_length": features.WIN_LENGTH,
    }
    wrong = {k: cfg[k] for k, v in expected.items() if k in cfg and cfg[k] != v}
    if wrong:
        raise ExportError(f"{path} differs from the app's front end {expected}: {wrong}")


def _export_fp32(model: Any, path: Path, torch: ModuleType) -> None:
    # The same (already imported) torch as `torch`; imported by name so the base class is typed.
    from torch import Tensor, nn

    class Logits(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_features: Tensor) -> Tensor:
            logits: Tensor = self.inner(input_features=input_features).logits
            return logits

    wrapper = Logits(model).eval()
    trace = torch.from_numpy(features.log_mel(probe_audio(TRACE_SECONDS, seed=99)))[None]
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (trace,),
            str(path),
            input_names=["input_features"],
            output_names=["logits"],
            dynamic_axes={
                "input_features": {0: "batch", 1: "frames"},
                "logits": {0: "batch", 1: "ctc_frames"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    # The exporter restores the train flag recursively afterwards: force eval again (dropout!).
    wrapper.eval()
    model.eval()


def _export_fp16(fp32: Path, path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32))
    # fp32 inputs/outputs keep the runtime's code identical across precisions.
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(path))


def _export_int8(fp32: Path, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(path), op_types_to_quantize=["MatMul"], weight_type=QuantType.QUInt8)


def _ort_logits(path: Path, feats: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    logits: np.ndarray = session.run(["logits"], {"input_features": feats[None]})[0][0]  # untyped ORT
    return logits


def check_parity(graph: Path, model: Any, precision: str, probes: Sequence[np.ndarray]) -> ParityFigures:
    """Compare an ONNX graph's logits with PyTorch's on each probe; raise ParityError on disagreement."""
    import torch

    tolerance = TOLERANCES[precision]
    max_diff, agree, frames = 0.0, 0, 0
    for audio in probes:
        feats = features.log_mel(audio)
        with torch.no_grad():
            expected = model(input_features=torch.from_numpy(feats)[None]).logits[0].numpy()
        try:
            got = _ort_logits(graph, feats)
        except Exception as exc:
            raise ParityError(f"{precision} graph failed to run on ONNX Runtime CPU: {exc}") from exc
        if not np.isfinite(got).all():
            raise ParityError(f"The {precision} graph produced NaN or infinite logits; nothing was written")
        if got.shape != expected.shape:
            raise ParityError(f"{precision} graph output shape {got.shape} != PyTorch {expected.shape}")
        max_diff = max(max_diff, float(np.abs(got - expected).max()))
        agree += int((got.argmax(-1) == expected.argmax(-1)).sum())
        frames += expected.shape[0]
    figures: ParityFigures = {
        "max_abs_diff": max_diff,
        "argmax_agreement": agree / frames,
        "frames": frames,
        "probe_seconds": [round(a.size / features.SAMPLE_RATE, 3) for a in probes],
        "tolerance": tolerance,
    }
    limit = tolerance["max_abs_diff"]
    if (limit is not None and max_diff > limit) or figures["argmax_agreement"] < tolerance[
        "min_argmax_agreement"
    ]:
        raise ParityError(
            f"The {precision} ONNX graph disagrees with PyTorch: {figures}; nothing was written"
        )
    return figures


def export_medasr(
    source: Path,
    out: Path,
    precisions: Sequence[str] = ("fp32",),
    *,
    revision: str | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export `source` (a save_pretrained snapshot of LasrForCTC) to the model directory `out`."""
    torch, transformers = _require_export_extra()
    source, out = Path(source), Path(out)
    wanted = [p for p in PRECISIONS if p in set(precisions)]
    unknown = set(precisions) - set(PRECISIONS)
    if unknown or not wanted:
        raise ExportError(f"precision must be among {PRECISIONS}, got {list(precisions)}")
    if not (source / "config.json").is_file():
        raise ExportError(f"{source} is not a model snapshot (no config.json)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} already exists and is not empty; choose another --out or pass --overwrite")
    _check_front_end(source)

    try:
        # safetensors only: a pickled checkpoint in a downloaded snapshot could run code on load.
        model = transformers.LasrForCTC.from_pretrained(
            str(source), local_files_only=True, use_safetensors=True
        ).eval()
    except Exception as exc:
        raise ExportError(f"Cannot load LasrForCTC from {source}: {exc}") from exc
    vocabulary = _vocabulary(source, model.config.vocab_size, model.config.pad_token_id, transformers)
    probes = [probe_audio(s, seed=i) for i, s in enumerate(PROBE_SECONDS)]
    # Full-scale noise: the loudest input a microphone gives, where fp16 overflows first.
    probes.append(
        np.clip(np.random.default_rng(7).standard_normal(3 * features.SAMPLE_RATE), -1, 1).astype(np.float32)
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        fp32_path = staging / graph_file("fp32")
        log.info("exporting fp32 graph from %s", source)
        _export_fp32(model, fp32_path, torch)
        parity: dict[str, ParityFigures] = {}
        for precision in ("fp32", "fp16", "int8"):
            if precision == "fp16" and "fp16" in wanted:
                _export_fp16(fp32_path, staging / graph_file("fp16"))
            elif precision == "int8" and "int8" in wanted:
                _export_int8(fp32_path, staging / graph_file("int8"))
            if precision == "fp32" or precision in wanted:
                parity[precision] = check_parity(staging / graph_file(precision), model, precision, probes)
        if "fp32" not in wanted:
            fp32_path.unlink()
        vocabulary.save(staging / VOCAB_FILE)
        files = sorted(p.name for p in staging.iterdir())
        metadata = {
            "format_version": FORMAT_VERSION,
            "model_name": "medasr",
            "architecture": "LasrForCTC",
            "source_revision": _source_revision(source, revision),
            "precisions": wanted,
            "opset": OPSET,
            "vocab_size": model.config.vocab_size,
            "blank_id": vocabulary.blank_id,
            "parameters": sum(p.numel() for p in model.parameters()),
            "encoder": {
                k: getattr(model.config.encoder_config, k)
                for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
            },
            "frame_seconds": 4 * features.HOP_LENGTH / features.SAMPLE_RATE,
            "parity": parity,
            "exported_with": {"torch": torch.__version__, "transformers": transformers.__version__},
            "sha256": {name: file_sha256(staging / name) for name in files},
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a per-machine install is read by every user
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out=out, precisions=wanted, parity=parity)
