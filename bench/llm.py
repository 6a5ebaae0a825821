"""Benchmark the LLM engine on the embedded model (or any GGUF) against raw llama-cpp-python.

    .venv/bin/python bench/llm.py [--model PATH] [--threads N] [--max-tokens 96] [--repeats 3]

Prints one JSON document. Every ratio compares runs made in this process, interleaved, on the
same prompt tokens with greedy sampling:
- engine_vs_raw: our streaming engine's decode tokens/s against `llama_cpp.Llama.create_completion`
  (stream=True) fed the identical token ids (target >= 0.95); time to first token for both.
- constrained: our schema-constrained JSON decoding against our unconstrained decoding of the same
  prompt (target >= 0.8), with how often the grammar rejected the sampled token.
- naive_grammar: llama-cpp-python's own grammar path (the grammar applied to the whole vocabulary
  at every step) for reference, against the same unconstrained rate.
Decode rate = (generated tokens - 1) / (time from first to last token): prompt time is excluded
and reported separately as time to first token.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is named llm.py: keep its folder off sys.path so imports resolve to the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import llama_cpp  # noqa: E402
from llama_cpp.llama_grammar import LlamaGrammar  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from clarke_desktop.llm.base import Turn  # noqa: E402
from clarke_desktop.llm.llama_engine import LlamaCppEngine, gpu_offload_supported  # noqa: E402
from clarke_desktop.llm.registry import embedded_model_path  # noqa: E402
from clarke_desktop.llm.structured import gbnf_for  # noqa: E402

LETTER_PROMPT = [
    Turn(
        "user",
        "You are a clinical scribe. Write the history section of an outpatient clinic letter.\n\n"
        "Transcript: The patient is a 67-year-old man with type 2 diabetes and chronic kidney "
        "disease stage 3. He reports more breathlessness on exertion over six weeks, ankle "
        "swelling in the evenings and two pillows at night. He takes metformin 1 g twice daily, "
        "ramipril 5 mg and atorvastatin 40 mg. No chest pain. His last eGFR was 48.",
    )
]
JSON_PROMPT = [
    Turn(
        "user",
        "Read the consultation and return JSON with a summary, a list of clinical flags and "
        "whether review is urgent.\n\nConsultation: 67-year-old man, type 2 diabetes, CKD stage 3, "
        "six weeks of exertional breathlessness, ankle oedema, orthopnoea; eGFR 48.",
    )
]


class Flag(BaseModel):
    label: str = Field(max_length=60)
    reason: str = Field(max_length=120)


class ClinicalFlags(BaseModel):
    summary: str = Field(max_length=300)
    flags: list[Flag] = Field(max_length=4)
    urgent: bool


class Triage(BaseModel):
    """Short, completes well within max_tokens: exercises the grammar forcing key names."""

    summary: str = Field(max_length=100)
    urgent: bool
    review_weeks: int
    flags: list[str] = Field(max_length=3)


def _decode_rate(tokens: int, first: float, last: float) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def run_raw(llm: llama_cpp.Llama, prompt_tokens: list[int], max_tokens: int, grammar=None) -> dict:
    llm.reset()
    start = time.perf_counter()
    first = last = None
    count = 0
    for chunk in llm.create_completion(
        prompt_tokens, max_tokens=max_tokens, temperature=0.0, stream=True, grammar=grammar
    ):
        if chunk["choices"][0]["finish_reason"] is not None and not chunk["choices"][0]["text"]:
            continue  # the closing chunk carries no token
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    return {
        "tokens": count,
        "ttft_s": (first - start) if first else None,
        "tps": _decode_rate(count, first or 0, last or 0),
    }


def run_engine(engine: LlamaCppEngine, turns: list[Turn], max_tokens: int) -> dict:
    start = time.perf_counter()
    first = last = None
    for _piece in engine.stream(turns, max_tokens=max_tokens, temperature=0.0):
        now = time.perf_counter()
        first = first or now
        last = now
    stats = engine.last_stats
    tokens = stats.completion_tokens - (1 if stats.stopped_by == "eog" else 0)
    return {
        "tokens": tokens,
        "ttft_s": (first - start) if first else None,
        "tps": _decode_rate(tokens, first or 0, last or 0),
        "stopped_by": stats.stopped_by,
    }


def _generate_constrained(
    engine: LlamaCppEngine, turns: list[Turn], schema: type[BaseModel], *, max_tokens: int
) -> str:
    """Grammar-constrained text without validation: the engine's own sampling loop, measured (a
    benchmark helper, so it reaches into the engine rather than widening its API)."""
    from clarke_desktop.llm.structured import gbnf_for

    return "".join(
        engine._stream_text(
            engine.prompt_tokens(turns),
            max_tokens=max_tokens,
            temperature=0.0,
            grammar=gbnf_for(schema),
            literal_ids=engine._literal_token_ids(schema),
        )
    )


def run_constrained(
    engine: LlamaCppEngine, turns: list[Turn], max_tokens: int, schema: type[BaseModel] = ClinicalFlags
) -> dict:
    _generate_constrained(engine, turns, schema, max_tokens=max_tokens)
    stats = engine.last_stats
    return {
        "tokens": stats.completion_tokens,
        "tps": stats.tokens_per_second,
        "sampling_ms_per_token": 1000 * stats.sampling_seconds / max(1, stats.completion_tokens),
        "grammar_rejections": stats.grammar_rejections,
        "full_vocab_fallbacks": stats.full_vocab_fallbacks,
        "stopped_by": stats.stopped_by,
    }


def run_unconstrained_stats(engine: LlamaCppEngine, turns: list[Turn], max_tokens: int) -> dict:
    engine.complete(turns, max_tokens=max_tokens, temperature=0.0)
    stats = engine.last_stats
    return {
        "tokens": stats.completion_tokens,
        "tps": stats.tokens_per_second,
        "sampling_ms_per_token": 1000 * stats.sampling_seconds / max(1, stats.completion_tokens),
    }


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 4) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: embedded model)")
    parser.add_argument("--threads", type=int, default=None, help="generation threads for both sides")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--naive-max-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    model = args.model or embedded_model_path()
    offload = gpu_offload_supported()
    engine = LlamaCppEngine(model, n_threads=args.threads, n_threads_batch=args.threads)
    threads = engine._threads
    raw = llama_cpp.Llama(
        str(model),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=engine._threads_batch,
        n_gpu_layers=-1 if offload else 0,
        flash_attn=offload,
        verbose=False,
    )
    letter_tokens = engine.prompt_tokens(LETTER_PROMPT)
    json_tokens = engine.prompt_tokens(JSON_PROMPT)
    naive_grammar = LlamaGrammar.from_string(gbnf_for(ClinicalFlags), verbose=False)

    # Warm up both (first decode allocates buffers, pages in weights).
    run_raw(raw, letter_tokens, 4)
    run_engine(engine, LETTER_PROMPT, 4)

    raw_runs, engine_runs, free_runs, constrained_runs, pair_ratios, json_ratios = [], [], [], [], [], []
    short_runs, short_ratios = [], []
    for _ in range(args.repeats):
        r = run_raw(raw, letter_tokens, args.max_tokens)
        e = run_engine(engine, LETTER_PROMPT, args.max_tokens)
        u = run_unconstrained_stats(engine, JSON_PROMPT, args.max_tokens)
        c = run_constrained(engine, JSON_PROMPT, args.max_tokens)
        short = run_constrained(engine, JSON_PROMPT, args.max_tokens, schema=Triage)
        short_runs.append(short)
        if u["tps"]:
            short_ratios.append(short["tps"] / u["tps"])
        raw_runs.append(r)
        engine_runs.append(e)
        free_runs.append(u)
        constrained_runs.append(c)
        if r["tps"]:
            pair_ratios.append(e["tps"] / r["tps"])
        if u["tps"]:
            json_ratios.append(c["tps"] / u["tps"])
    naive = run_raw(raw, json_tokens, args.naive_max_tokens, grammar=naive_grammar)
    unconstrained_tps = _median(free_runs, "tps")

    report = {
        "model": Path(model).name,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpu_offload": offload,
            "threads": threads,
        },
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "engine_vs_raw": {
            "raw_tokens_per_s": _median(raw_runs, "tps"),
            "engine_tokens_per_s": _median(engine_runs, "tps"),
            "ratio": round(statistics.median(pair_ratios), 3) if pair_ratios else None,
            "target": 0.95,
            "raw_tokens": [r["tokens"] for r in raw_runs],
            "engine_tokens": [e["tokens"] for e in engine_runs],
        },
        "time_to_first_token_s": {
            "raw": _median(raw_runs, "ttft_s"),
            "engine": _median(engine_runs, "ttft_s"),
            "prompt_tokens": len(letter_tokens),
        },
        "constrained": {
            "unconstrained_tokens_per_s": unconstrained_tps,
            "constrained_tokens_per_s": _median(constrained_runs, "tps"),
            "ratio": round(statistics.median(json_ratios), 3) if json_ratios else None,
            # The cost of constraining itself, free of the model's (noisy, shared-CPU) decode time:
            "sampling_ms_per_token_unconstrained": _median(free_runs, "sampling_ms_per_token"),
            "sampling_ms_per_token_constrained": _median(constrained_runs, "sampling_ms_per_token"),
            "target": 0.8,
            "tokens": [c["tokens"] for c in constrained_runs],
            "grammar_rejections": [c["grammar_rejections"] for c in constrained_runs],
            "full_vocab_fallbacks": [c["full_vocab_fallbacks"] for c in constrained_runs],
            "stopped_by": [c["stopped_by"] for c in constrained_runs],
        },
        "constrained_short_json": {
            "schema": "Triage (4 keys, completes before max_tokens)",
            "constrained_tokens_per_s": _median(short_runs, "tps"),
            "ratio": round(statistics.median(short_ratios), 3) if short_ratios else None,
            "sampling_ms_per_token_constrained": _median(short_runs, "sampling_ms_per_token"),
            "target": 0.8,
            "tokens": [c["tokens"] for c in short_runs],
            "grammar_rejections": [c["grammar_rejections"] for c in short_runs],
            "full_vocab_fallbacks": [c["full_vocab_fallbacks"] for c in short_runs],
            "stopped_by": [c["stopped_by"] for c in short_runs],
        },
        "naive_grammar": {
            "tokens_per_s": round(naive["tps"], 4),
            "tokens": naive["tokens"],
            "ratio_vs_unconstrained": round(naive["tps"] / unconstrained_tps, 3)
            if unconstrained_tps
            else None,
        },
    }
    engine.close()
    raw.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
