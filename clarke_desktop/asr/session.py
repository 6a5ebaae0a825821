"""ONNX Runtime sessions for MedASR: provider selection CUDA -> CPU, reported, never silent.

onnxruntime(-gpu) falls back to CPU without an error when CUDA cannot start (missing CUDA or
cuDNN libraries, no device). We always read back `session.get_providers()` and report the
provider actually in use, with the reason when it is not the one asked for.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from clarke_desktop.asr.base import AsrError
from clarke_desktop.asr.model_dir import ModelDir

log = logging.getLogger("clarke_desktop.asr")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# Preferred graph per provider: fp16 where tensor cores make it pay, fp32 (exact) on CPU.
PRECISION_PREFERENCE = {CUDA: ("fp16", "fp32", "int8"), CPU: ("fp32", "int8", "fp16")}


@dataclass
class SessionChoice:
    provider: str
    precision: str
    note: str | None = None  # why the provider differs from the one asked for


def default_cpu_threads() -> int:
    """Intra-op threads: the cores this process may use, leaving one free for UI and audio from 4 up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1 if cores >= 4 else cores)


class OnnxAcousticModel:
    """MedASR's encoder + CTC head: log-mel features (T, 128) -> logits (T', vocab)."""

    def __init__(
        self,
        model: ModelDir,
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int | None = None,
        io_binding: bool | None = None,
    ) -> None:
        if device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be auto, cuda or cpu, not {device!r}")
        available = ort.get_available_providers()
        want_cuda = device == "cuda" or (device == "auto" and CUDA in available)
        note = None
        if device == "cuda" and CUDA not in available:
            note = f"CUDA requested but this onnxruntime build offers only {available}"
            want_cuda = False
        requested = CUDA if want_cuda else CPU
        self.precision = self._pick_precision(model, requested, precision)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        threads = cpu_threads or default_cpu_threads()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        providers: list[str | tuple[str, dict[str, str]]] = (
            [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU] if want_cuda else [CPU]
        )
        path = model.graph(self.precision)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:
            raise AsrError(f"Cannot load the speech model {path}: {exc}") from exc
        actual = self.session.get_providers()[0]
        if actual != requested:
            note = note or f"{requested} was requested but ONNX Runtime could not start it (see its log)"
            providers = [actual]
            better = self._pick_precision(model, actual, precision)
            if better != self.precision:  # e.g. not the fp16 graph meant for CUDA on a CPU
                self.precision, path = better, model.graph(better)
                self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.choice = SessionChoice(provider=actual, precision=self.precision, note=note)
        self.provider = actual
        self.cpu_threads = threads if actual == CPU else None
        if note:
            log.warning("speech model runs on %s (%s): %s", actual, self.precision, note)
        else:
            log.info("speech model runs on %s (%s, %s)", actual, self.precision, path.name)
        # IO binding pays on GPU (one upload, no framework copies); None = use it there only.
        self._io_binding = (actual == CUDA) if io_binding is None else io_binding
        self._device_type = "cuda" if actual == CUDA else "cpu"
        self._model, self._opts, self._providers = model, opts, providers

    @staticmethod
    def _pick_precision(model: ModelDir, provider: str, precision: str) -> str:
        available = model.precisions
        if precision != "auto":
            if precision not in available:
                raise AsrError(
                    f"The speech model at {model.path} has no {precision} graph (it has {', '.join(available)})"
                )
            return precision
        for candidate in PRECISION_PREFERENCE[provider]:
            if candidate in available:
                return candidate
        raise AsrError(f"The speech model at {model.path} has no ONNX graph")

    def logits(self, feats: np.ndarray) -> np.ndarray:
        """(T, 128) float32 -> (T', vocab) float32; never NaN (a reduced graph that overflows is replaced)."""
        out = self._run(feats)
        if np.isfinite(out).all():
            return out
        if self.precision == "fp32" or "fp32" not in self._model.precisions:
            raise AsrError(f"The speech model ({self.precision}) produced invalid values (NaN/infinity)")
        # fp16 can overflow on unusual input; switch to the exact graph for good, and say so.
        note = f"the {self.precision} graph overflowed (NaN/infinity); switched to fp32"
        log.warning("speech model: %s", note)
        self.session = ort.InferenceSession(
            str(self._model.graph("fp32")), self._opts, providers=self._providers
        )
        self.precision = self.choice.precision = "fp32"
        self.choice.note = note
        return self.logits(feats)

    def _run(self, feats: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(feats[None], dtype=np.float32)
        if not self._io_binding:
            # onnxruntime is untyped: the first output is the (1, T', vocab) float32 logits.
            logits: np.ndarray = self.session.run(["logits"], {"input_features": batch})[0][0]
            return logits
        # GPU: copy the input once to the device, let ORT allocate the output where it likes,
        # and bring only the logits back.
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(
            "input_features", ort.OrtValue.ortvalue_from_numpy(batch, self._device_type, 0)
        )
        binding.bind_output("logits", "cpu")
        self.session.run_with_iobinding(binding)
        bound: np.ndarray = binding.copy_outputs_to_cpu()[0][0]
        return bound
