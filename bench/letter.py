"""Per-stage timing of one letter on the installed (or embedded demo) models.

    .venv/bin/python bench/letter.py [--patient pt-001] [--transcript FILE] [--type clinic]
                                     [--max-tokens 64] [--db PATH]

Prints one JSON document: seconds for context retrieval (FHIR), the EHR model's flags, each
section (facts sections: rendering; narrative sections: prompt + streamed answer, with token
counts and decode rate from the engine), discrepancy detection and fact check, and the total.
The baseline measured in the same run is a plain completion of `--max-tokens` tokens on a short
prompt: `section_decode_vs_baseline` compares each narrative section's decode rate with it
(the letter's own code should add nothing per token, so ~1.0 is expected).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from clarke_desktop.agent.context import build_context  # noqa: E402
from clarke_desktop.fhir.local import LocalFhirClient  # noqa: E402
from clarke_desktop.letters.writer import LetterEvent, write_document  # noqa: E402
from clarke_desktop.llm.base import Turn  # noqa: E402
from clarke_desktop.llm.registry import get_engine  # noqa: E402
from clarke_desktop.paths import resources_dir  # noqa: E402
from clarke_desktop.schemas import Transcript  # noqa: E402


def _stats(engine) -> dict:
    stats = getattr(engine, "last_stats", None)
    if stats is None:
        return {}
    decode = stats.decode_seconds or 0.0
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "prompt_s": round(stats.prompt_seconds, 4),
        "decode_s": round(decode, 4),
        "decode_tok_s": round((stats.completion_tokens - 1) / decode, 2)
        if stats.completion_tokens > 1 and decode
        else None,
        "stopped_by": stats.stopped_by,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patient", default="pt-001")
    parser.add_argument("--transcript", type=Path, default=resources_dir() / "demo" / "pt-001_transcript.txt")
    parser.add_argument(
        "--type", dest="doc_type", default="clinic", choices=["clinic", "soap", "referral", "patient"]
    )
    parser.add_argument(
        "--max-tokens", type=int, default=64, help="per narrative section (and for the flags)"
    )
    parser.add_argument(
        "--db", type=Path, help="FHIR database (default: a fresh one from the bundled dataset)"
    )
    args = parser.parse_args(argv)

    if args.db is None:
        os.environ.setdefault("CLARKE_DATA_DIR", tempfile.mkdtemp(prefix="clarke-bench-"))
        from clarke_desktop.demo_data import ensure_database

        started = time.perf_counter()
        db = ensure_database()
        setup_s = time.perf_counter() - started
    else:
        db, setup_s = args.db, 0.0

    started = time.perf_counter()
    writer = get_engine("letter_writer")
    ehr = get_engine("ehr_agent")
    load_s = time.perf_counter() - started

    # Baseline in this run: a plain completion of the same length on a short prompt.
    writer.complete([Turn("user", "Say hello.")], max_tokens=4)  # warm-up
    writer.complete(
        [Turn("user", "Write two sentences about outpatient clinics.")],
        max_tokens=args.max_tokens,
        temperature=0.0,
    )
    baseline = _stats(writer)

    transcript = Transcript(text=args.transcript.read_text(encoding="utf-8").strip(), origin="imported_text")
    timings: dict[str, float] = {}
    fhir = LocalFhirClient(db)
    try:
        context = build_context(fhir, args.patient, engine=ehr, timings=timings)
        flags_stats = _stats(ehr)
    finally:
        fhir.close()
    sections: dict[str, dict] = {}

    def on_event(event: LetterEvent) -> None:
        if event.kind == "section_done" and event.section and event.section.kind == "narrative":
            sections[event.key or ""] = _stats(writer)

    doc = write_document(
        transcript, context, writer, doc_type=args.doc_type, max_tokens=args.max_tokens,
        on_event=on_event, timings=timings, letter_date=date.today(),
    )  # fmt: skip
    timings = doc.timings  # the document's own record: context stages passed in + letter stages
    base_rate = baseline.get("decode_tok_s")
    for key, stats in sections.items():
        stats["seconds"] = timings.get(f"section.{key}_s")
        rate = stats.get("decode_tok_s")
        stats["section_decode_vs_baseline"] = round(rate / base_rate, 3) if rate and base_rate else None
    stage_keys = ["context_retrieval_s", "model_flags_s", *[k for k in timings if k.startswith("section.")],
                  "discrepancies_s", "fact_check_s"]  # fmt: skip
    report = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        },  # fmt: skip
        "model": {"letter_writer": writer.info.model_dump(), "ehr_agent": ehr.info.model_dump()},
        "patient": args.patient,
        "doc_type": args.doc_type,
        "max_tokens": args.max_tokens,
        "transcript_words": transcript.word_count,
        "setup_s": {"fhir_database": round(setup_s, 3), "model_load": round(load_s, 3)},
        "baseline_completion": baseline,
        "stages_s": {k: timings[k] for k in stage_keys if k in timings},
        "letter_total_s": timings.get("letter_total_s"),
        "model_flags": flags_stats
        | {"flags": len(context.clinical_flags), "warnings": context.retrieval_warnings[-1:]},
        "narrative_sections": sections,
        "discrepancies": len(doc.discrepancies),
        "fact_check_items": len(doc.fact_check),
        "unsupported_facts": sum(not f.supported for f in doc.fact_check),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
