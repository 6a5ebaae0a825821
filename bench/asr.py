"""MedASR benchmark: ONNX Runtime fp32/int8 against PyTorch eager on the same weights, same run.

Builds (once, cached under --work) a random-weight snapshot with MedASR's full architecture
(LasrForCTC default config: 105M parameters), exports it with the app's exporter, and for each
audio length measures in separate processes (so peak memory is each engine's own):
  - PyTorch eager on the same windows (model time only, numpy features included for both),
  - the app's transcriber on the fp32 and int8 graphs (end to end from samples),
  - live transcription: chunks fed as fast as possible, lag = finish() after the last chunk.
Prints one JSON object. Needs the `export` extra (torch, transformers) and espeak-ng.

    .venv/bin/python bench/asr.py --durations 60 600
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "asr"))

TEXT = (
    "Thank you for seeing this sixty four year old lady with type two diabetes and hypertension. "
    "She takes gliclazide eighty milligrams twice daily, metformin five hundred milligrams three times "
    "a day and ramipril five milligrams once daily. Her HbA1c has risen from fifty two to sixty one. "
    "Blood pressure today was one hundred and forty two over eighty eight. Plan: increase gliclazide, "
    "repeat bloods in three months and review in clinic."
)


def peak_rss_mb() -> float:
    """This process's own peak RSS. ru_maxrss survives exec on Linux (the parent's export would
    show up in every child), so read the new address space's high-water mark instead."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_description(threads: int) -> dict:
    flags, mhz = cpu_flags_and_mhz()
    return {"mhz_nominal": mhz, "avx512f": "avx512f" in flags, "avx2_fma": {"avx2", "fma"} <= flags,
            "avx_vnni": bool({"avx_vnni", "avx512_vnni"} & flags),
            "nominal_peak_gflop_per_s": round(cpu_peak_gflops(threads), 1)}  # fmt: skip


def cpu_flags_and_mhz() -> tuple[set[str], float]:
    flags: set[str] = set()
    mhz = 0.0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        elif line.startswith("cpu MHz") and not mhz:
            mhz = float(line.split(":", 1)[1])
    return flags, mhz


def cpu_peak_gflops(threads: int) -> float:
    """fp32 FMA peak of `threads` cores at the nominal clock /proc/cpuinfo reports: 2 FMA units
    of 8 (AVX2) or 16 (AVX-512) floats, 2 operations each, per cycle. An estimate: boost clocks
    can exceed it, and some AVX-512 parts have one FMA unit."""
    flags, mhz = cpu_flags_and_mhz()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
    return threads * per_cycle * mhz / 1000


# -- preparation (parent) ----------------------------------------------------------------------
def prepare(work: Path, durations: list[int]) -> tuple[Path, dict[int, Path]]:
    import soundfile as sf
    from builders import build_snapshot

    from clarke_desktop.asr.export import export_medasr
    from clarke_desktop.audio.files import load_audio

    work.mkdir(parents=True, exist_ok=True)
    snapshot, model = work / "snapshot", work / "model"
    if not (snapshot / "model.safetensors").is_file():
        build_snapshot(snapshot, tiny=False, seed=0, init_range=0.02)
    if not (model / "metadata.json").is_file():
        export_medasr(snapshot, model, ["fp32", "int8"], overwrite=True)
    speech_wav = work / "speech.wav"
    if not speech_wav.is_file():
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(speech_wav), TEXT], check=True)
    speech = load_audio(speech_wav)
    rng = np.random.default_rng(0)
    audio_files = {}
    for seconds in durations:
        path = work / f"audio_{seconds}s.wav"
        if not path.is_file():
            n = seconds * 16000
            reps = int(np.ceil(n / speech.size))
            audio = np.tile(speech, reps)[:n] + (0.005 * rng.standard_normal(n)).astype(np.float32)
            sf.write(path, audio.astype(np.float32), 16000, subtype="FLOAT")
        audio_files[seconds] = path
    return model, audio_files


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- measurements (children) --------------------------------------------------------------------
def child_torch(snapshot: Path, audio: np.ndarray, threads: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LasrForCTC

    from clarke_desktop.asr.features import log_mel
    from clarke_desktop.asr.windows import WindowPlan, total_frames

    torch.set_num_threads(threads)
    model = LasrForCTC.from_pretrained(str(snapshot)).eval()
    windows = WindowPlan().windows(total_frames(audio.size))
    with torch.inference_mode():
        model(input_features=torch.from_numpy(log_mel(audio[: 5 * 16000]))[None])  # warm-up
        began = time.perf_counter()
        for w in windows:
            start, end = w.samples
            model(input_features=torch.from_numpy(log_mel(audio[start:end]))[None]).logits.argmax(-1)
        seconds = time.perf_counter() - began
        # The arithmetic the windows need (matmuls, convolutions, attention), counted by PyTorch
        # once per distinct window length, after the timing: the same work every engine does.
        per_length: dict[int, int] = {}
        for w in windows:
            start, end = w.samples
            if end - start not in per_length:
                with FlopCounterMode(display=False) as counter:
                    model(input_features=torch.from_numpy(log_mel(audio[start:end]))[None])
                per_length[end - start] = counter.get_total_flops()
        flops = sum(per_length[w.samples[1] - w.samples[0]] for w in windows)
    return {"seconds": seconds, "windows": len(windows), "gflop": round(flops / 1e9, 1)}


def child_ort(model_dir: Path, audio: np.ndarray, threads: int, precision: str) -> dict:
    from clarke_desktop.asr.transcriber import OnnxTranscriber

    t = OnnxTranscriber(model_dir, precision=precision, cpu_threads=threads)
    t.transcribe(audio[: 5 * 16000])  # warm-up
    began = time.perf_counter()
    transcript = t.transcribe(audio)
    seconds = time.perf_counter() - began
    assert "torch" not in sys.modules
    return {
        "seconds": seconds,
        "provider": t.provider,
        "precision": t.precision,
        "words": len(transcript.words),
    }


def child_live(model_dir: Path, audio: np.ndarray, threads: int, precision: str) -> dict:
    from clarke_desktop.asr.transcriber import OnnxTranscriber

    t = OnnxTranscriber(model_dir, precision=precision, cpu_threads=threads)
    t.transcribe(audio[: 5 * 16000])  # warm-up
    live = t.live()
    # Stop 0.7 s off the partial-pass grid so finish() cannot reuse the last tentative pass
    # (a recording that ends exactly on it would show an unrealistically small lag).
    audio = audio[: audio.size - int(0.7 * 16000)]
    step = 1600  # 100 ms chunks, as a recorder delivers them
    began = time.perf_counter()
    for i in range(0, audio.size, step):
        live.feed(audio[i : i + step])
    fed = time.perf_counter()
    final = live.finish()
    lag = time.perf_counter() - fed
    offline = t.transcribe(audio)
    return {
        "lag_s": lag,
        "feed_seconds": fed - began,
        "passes": live.passes,
        "equals_offline": final.text == offline.text,
        "precision": t.precision,
    }


def child_main(argv: list[str]) -> None:
    engine, path, model_dir, snapshot, threads = (
        argv[0],
        Path(argv[1]),
        Path(argv[2]),
        Path(argv[3]),
        int(argv[4]),
    )
    from clarke_desktop.audio.files import load_audio

    audio = load_audio(path)
    if engine == "torch":
        result = child_torch(snapshot, audio, threads)
    elif engine.startswith("live-"):
        result = child_live(model_dir, audio, threads, engine.split("-", 1)[1])
    else:
        result = child_ort(model_dir, audio, threads, engine.split("-", 1)[1])
    result["audio_s"] = audio.size / 16000
    if "seconds" in result:
        result["rtf"] = result["seconds"] / result["audio_s"]
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "clarke-bench-asr"
    )
    parser.add_argument("--durations", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--live-durations", type=int, nargs="+", default=None)
    parser.add_argument("--live-precisions", nargs="+", default=["fp32", "int8"])
    args = parser.parse_args()

    from clarke_desktop.asr.session import default_cpu_threads

    threads = args.threads or default_cpu_threads()
    load_before = os.getloadavg()
    began = time.perf_counter()
    model_dir, audio_files = prepare(args.work, args.durations)
    prepared = time.perf_counter() - began
    snapshot = args.work / "snapshot"
    results: dict = {}
    for seconds, path in audio_files.items():
        common = [str(path), str(model_dir), str(snapshot), str(threads)]
        row = {engine: run_child([engine, *common]) for engine in ("torch", "ort-fp32", "ort-int8")}
        if args.live_durations is None or seconds in args.live_durations:
            for precision in args.live_precisions:
                row[f"live-{precision}"] = run_child([f"live-{precision}", *common])
        torch_s, gflop = row["torch"].get("seconds"), row["torch"].get("gflop")
        for engine in ("torch", "ort-fp32", "ort-int8"):
            if torch_s and "seconds" in row[engine]:
                row[engine]["time_vs_torch"] = round(row[engine]["seconds"] / torch_s, 3)
                if gflop:  # int8 does the same work in integer operations
                    row[engine]["achieved_gflop_per_s"] = round(gflop / row[engine]["seconds"], 1)
        if gflop:
            row["compute"] = {"gflop": gflop, "gflop_per_audio_s": round(gflop / seconds, 2),
                              "rtf_if_run_at_nominal_peak": round(gflop / seconds / cpu_peak_gflops(threads), 4)}  # fmt: skip
        results[f"{seconds}s"] = row
    meta = json.loads((model_dir / "metadata.json").read_text())
    report = {
        "cpu": cpu_description(threads),
        "benchmark": "medasr-onnxruntime",
        "model": {"parameters": meta["parameters"], "encoder": meta["encoder"], "parity": meta["parity"]},
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "prepare_s": round(prepared, 1),
        "results": results,
        "targets": {
            "ort_fp32_time_vs_torch_max": 0.6,
            "rtf_max": 0.03,
            "live_lag_s_max": 1.5,
        },
    }
    checks = {}
    for key, row in results.items():
        checks[key] = {
            "fp32_vs_torch_ok": row["ort-fp32"].get("time_vs_torch", 9) <= 0.6,
            "fp32_rtf_ok": row["ort-fp32"].get("rtf", 9) <= 0.03,
            "int8_rtf_ok": row["ort-int8"].get("rtf", 9) <= 0.03,
            **{
                f"{engine}_lag_ok": row[engine].get("lag_s", 9) <= 1.5
                for engine in row
                if engine.startswith("live-")
            },
        }
    report["checks"] = checks
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
