"""The safety checks measured on realistic language: PriMock57's consultations with their
clinicians' notes, the demo consultations with their FHIR records, and planted errors.

    .venv/bin/python bench/safety.py [--primock DIR] [--out FILE]

Prints one JSON document:
- faithful_notes: on notes written by the consulting clinician (faithful to the dialogue), the
  share of facts flagged unsupported, after excluding facts labelled by hand as truly not in the
  dialogue (bench/data/primock57_absent.json: examination findings, advice not spoken...). Target
  <= 5%.
- planted: recall per kind on errors planted by a deterministic generator into the notes and the
  constructed letters (bench/data/constructed.jsonl): dose changed, drug swapped to one not said,
  drug swapped to one said in the consultation, frequency changed, lab value changed, date changed.
  An error is caught when a fact overlapping the edit is flagged unsupported. Target >= 95% each.
- correction: planted mishearings of record terms restored / wrongly rewritten; look-alike pairs
  (a correctly spoken drug or diagnosis with its look-alike on the record) rewritten (target 0)
  and flagged; drug or diagnosis words rewritten across the PriMock57 dialogues (target 0).
- speed: milliseconds per 1,000 words (transcript + letter) for `verify`, and for `correct`.
No language model is loaded; everything runs on this machine's CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import primock  # noqa: E402

from clarke_desktop.asr.correction import Term, correct_transcript, is_known_term  # noqa: E402
from clarke_desktop.clinical_text import vocabulary  # noqa: E402
from clarke_desktop.clinical_text.reader import read  # noqa: E402
from clarke_desktop.letters.fact_check import Fact, verify_letter  # noqa: E402
from clarke_desktop.schemas import Transcript  # noqa: E402

DATA = REPO / "bench" / "data"
KINDS = ("dose_changed", "drug_swapped_not_said", "drug_swapped_said", "frequency_changed",
         "lab_value_changed", "date_changed")  # fmt: skip
_OTHER_DRUGS = ("amlodipine", "sertraline", "omeprazole", "lisinopril", "metformin", "atorvastatin", "amoxicillin",
                "prednisolone", "ibuprofen", "citalopram", "bisoprolol", "furosemide", "warfarin", "doxycycline")  # fmt: skip
_FREQ_SWAP = {1: "twice daily", 2: "three times a day", 3: "once daily", 4: "twice daily"}


@dataclass(frozen=True)
class Case:
    id: str
    transcript: str
    letter: str
    context: Any = None


def _pick(options: list[str], seed: str) -> str:
    return options[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(options)]


def _facts(case: Case, letter: str | None = None) -> list[Fact]:
    return verify_letter(case.letter if letter is None else letter, case.transcript, case.context)


# --- faithful notes -----------------------------------------------------------------------------


def faithful(cases: list[Case], labels: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    total = unsupported = excluded = 0
    kinds: dict[str, list[int]] = {}
    unlabelled: dict[str, list[str]] = {}
    for case in cases:
        absent = [label["text"] for label in labels.get(case.id, [])]
        for fact in _facts(case):
            if not fact.supported and fact.text in absent:
                absent.remove(fact.text)
                excluded += 1
                continue
            total += 1
            kinds.setdefault(fact.kind, [0, 0])[0] += 1
            if not fact.supported:
                unsupported += 1
                kinds[fact.kind][1] += 1
                unlabelled.setdefault(case.id, []).append(fact.text)
    return {
        "notes": len(cases),
        "facts": total,
        "unsupported": unsupported,
        "excluded_as_labelled_absent": excluded,
        "unsupported_share": round(unsupported / total, 4) if total else None,
        "by_kind": {k: {"facts": v[0], "unsupported": v[1]} for k, v in sorted(kinds.items())},
        "unsupported_facts": unlabelled,
    }


# --- planted errors -----------------------------------------------------------------------------


def _plants(case: Case) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, replacement) edits for one case's supported facts (deterministic)."""
    letter = read(case.letter)
    said = read(case.transcript, dialogue=True)
    said_drugs = {d.canonical for d in said.drugs if not d.is_class}
    supported = {(f.start, f.end) for f in _facts(case) if f.supported}
    plants: list[tuple[str, int, int, str]] = []

    def ok(ti: int, tj: int) -> tuple[int, int] | None:
        span = letter.span(ti, tj)
        return span if span in supported else None

    for drug in letter.drugs:
        if drug.is_class or drug.status.value == "allergy" or not (span := ok(drug.ti, drug.tj)):
            continue
        for q in drug.doses:
            if dspan := ok(q.ti, q.tj):
                unit = letter.text[letter.tokens[q.ti].end : dspan[1]]
                for factor in (2, 3, 5, 4):  # the first new dose that is not the drug's true dose
                    text = f"{(q.value * factor).normalize():f}{unit}"
                    edited = case.letter[: dspan[0]] + text + case.letter[dspan[1] :]
                    if not _true_elsewhere(case, edited, dspan[0], len(text)):
                        plants.append(("dose_changed", dspan[0], dspan[1], text))
                        break
        for f in drug.frequencies:
            if (fspan := ok(f.ti, f.tj)) and f.per_day is not None:
                for swap in (
                    _FREQ_SWAP.get(int(f.per_day), "once daily"),
                    "three times a day",
                    "once weekly",
                ):
                    edited = case.letter[: fspan[0]] + swap + case.letter[fspan[1] :]
                    if not _true_elsewhere(case, edited, fspan[0], len(swap)):
                        plants.append(("frequency_changed", fspan[0], fspan[1], swap))
                        break
        others = [d for d in _OTHER_DRUGS if d not in said_drugs and d != drug.canonical]
        plants.append(("drug_swapped_not_said", span[0], span[1], _pick(others, f"{case.id}{span}")))
        if drug.doses or drug.frequencies:
            said_others = sorted(said_drugs - {drug.canonical})
            for other in said_others:  # one said without this drug's dose and frequency
                mentions = [d for d in said.drugs if d.canonical == other]
                same = any(
                    any(q.value == dq.value and q.unit == dq.unit for q in m.doses for dq in drug.doses)
                    or any(mf.same_as(df) for mf in m.frequencies for df in drug.frequencies)
                    for m in mentions
                )
                if not same:
                    plants.append(("drug_swapped_said", span[0], span[1], other))
                    break
    for test in letter.tests:
        for q in test.values:
            if (vspan := ok(q.ti, q.tj)) and q.over is None:
                unit = letter.text[letter.tokens[q.ti].end : vspan[1]]
                for delta in (7, 13, 3, 1) if q.value >= 10 else (1, 2, 3):
                    text = f"{(q.value + delta).normalize():f}{unit}"
                    edited = case.letter[: vspan[0]] + text + case.letter[vspan[1] :]
                    if not _true_elsewhere(case, edited, vspan[0], len(text)):
                        plants.append(("lab_value_changed", vspan[0], vspan[1], text))
                        break
    for d in letter.dates:
        if (span := ok(d.ti, d.tj)) and len(d.iso) == 10 and not d.iso.startswith("--"):
            y, m, day = d.iso.split("-")
            plants.append(("date_changed", span[0], span[1], f"{(int(day) + 3 - 1) % 28 + 1}/{m}/{y}"))
        elif span and len(d.iso) == 4:
            plants.append(("date_changed", span[0], span[1], str(int(d.iso) - 2)))
    return plants


def _true_elsewhere(case: Case, edited: str, start: int, length: int) -> bool:
    """Whether the planted value happens to be true (said or recorded for the same drug or test):
    then it is no error, and another value is planted instead."""
    return any(
        f.supported and f.start <= start < f.end + 1 for f in _facts(case, edited) if f.start < start + length
    )


def planted(cases: list[Case]) -> dict[str, Any]:
    counts = {k: [0, 0] for k in KINDS}
    missed: dict[str, list[str]] = {}
    for case in cases:
        for kind, start, end, replacement in _plants(case):
            letter = case.letter[:start] + replacement + case.letter[end:]
            new_end = start + len(replacement)
            caught = any(
                not f.supported and f.start < new_end and f.end > start for f in _facts(case, letter)
            )
            counts[kind][0] += 1
            counts[kind][1] += caught
            if not caught:
                missed.setdefault(kind, []).append(
                    f"{case.id}: {case.letter[start:end]!r} -> {replacement!r}"
                )
    return {
        k: {
            "planted": n,
            "caught": c,
            "recall": round(c / n, 4) if n else None,
            "missed": missed.get(k, [])[:10],
        }
        for k, (n, c) in counts.items()
    }


# --- correction ---------------------------------------------------------------------------------


def _mishear(word: str, how: int) -> str:
    if how == 0:  # a letter dropped
        return word[: len(word) // 2] + word[len(word) // 2 + 1 :]
    if how == 1:  # two letters swapped
        k = len(word) // 2
        return word[: k - 1] + word[k] + word[k - 1] + word[k + 1 :]
    if how == 2:  # a vowel changed
        for k in range(len(word) - 2, 0, -1):
            if word[k] in "aeiou":
                return word[:k] + ("e" if word[k] != "e" else "a") + word[k + 1 :]
    # split into pieces ("met for min")
    third = max(2, len(word) // 3)
    return " ".join(p for p in (word[:third], word[third : 2 * third], word[2 * third :]) if p)


def correction() -> dict[str, Any]:
    terms = sorted({n for pair in vocabulary.lookalike_pairs() for n in pair} | set(_OTHER_DRUGS))
    restored = wrong = total = 0
    misses: list[str] = []
    for term in terms:
        for how in range(4):
            heard = _mishear(term, how)
            if heard == term or is_known_term(heard):
                continue  # the mishearing is itself a real word: nothing to restore
            total += 1
            text = f"She takes {heard} every day."
            result = correct_transcript(Transcript(text=text, origin="typed"), [Term(term, "medication")])
            if result.text == f"She takes {term} every day.":
                restored += 1
            elif result.text != text:
                wrong += 1
                misses.append(f"{heard!r} -> {result.text!r}")
            else:
                misses.append(f"{heard!r} not restored")
    pairs = [
        *vocabulary.lookalike_pairs(),
        ("hyperthyroidism", "hypothyroidism"),
        ("hypertension", "hypotension"),
    ]
    rewritten = flagged = 0
    for a, b in pairs:
        for said, recorded in ((a, b), (b, a)):
            text = f"She has been on {said} for years."
            result = correct_transcript(Transcript(text=text, origin="typed"), [Term(recorded, "medication")])
            rewritten += result.text != text
            flagged += bool(result.sound_alike_flags)
    return {
        "mishearings": {
            "planted": total,
            "restored": restored,
            "wrongly_rewritten": wrong,
            "missed": misses[:15],
        },
        "lookalike_pairs": {"cases": 2 * len(pairs), "rewritten": rewritten, "flagged": flagged},
    }


def dialogue_rewrites(cases: list[Case]) -> dict[str, Any]:
    """Correct each PriMock57 dialogue against the drugs named in its note: a drug or diagnosis
    word that was spoken correctly must never be rewritten."""
    rewritten: list[str] = []
    corrections = 0
    for case in cases:
        names = sorted({d.canonical for d in read(case.letter).drugs if not d.is_class})
        result = correct_transcript(
            Transcript(text=case.transcript, origin="typed"), [Term(n, "medication") for n in names]
        )
        corrections += len(result.corrections)
        rewritten += [
            f"{case.id}: {c.original} -> {c.corrected}"
            for c in result.corrections
            if is_known_term(c.original)
        ]
    return {"dialogues": len(cases), "corrections": corrections, "known_terms_rewritten": len(rewritten),
            "examples": rewritten[:10]}  # fmt: skip


# --- speed --------------------------------------------------------------------------------------


def speed(cases: list[Case], run: Callable[[Case], object]) -> float:
    words = sum(len(c.transcript.split()) + len(c.letter.split()) for c in cases)
    started = time.perf_counter()
    for case in cases:
        run(case)
    return round(1000 * (time.perf_counter() - started) / words * 1000, 2)


def cli_batch(notes: list[Case], pairs: int = 1500) -> dict[str, Any]:
    """`clarke-desktop verify --batch` on `pairs` transcript/letter pairs of a few thousand words each
    (two PriMock57 dialogues and a note), as an evaluation suite would call it; the baseline in the same
    run is the same process reading and writing the same lines without checking them."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "pairs.jsonl"
        with batch.open("w", encoding="utf-8") as out:
            for k in range(pairs):
                a, b = notes[k % len(notes)], notes[(k + 1) % len(notes)]
                out.write(json.dumps({"id": k, "transcript": f"{a.transcript}\n{b.transcript}", "letter": a.letter,
                                      "patient": None}) + "\n")  # fmt: skip
        words = sum(len(json.loads(line)["transcript"].split()) + len(json.loads(line)["letter"].split())
                    for line in batch.read_text(encoding="utf-8").splitlines())  # fmt: skip
        exe = Path(sys.executable).with_name("clarke-desktop")
        started = time.perf_counter()
        result = subprocess.run([str(exe), "verify", "--batch", str(batch), "--json"], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        lines = result.stdout.splitlines()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import json,sys\nfor l in open(sys.argv[1]): print(json.dumps(json.loads(l)))",
                        str(batch)], capture_output=True, check=True)  # fmt: skip
        baseline = time.perf_counter() - started
    return {
        "pairs": pairs,
        "words_per_pair": round(words / pairs),
        "seconds": round(seconds, 2),
        "exit_status": result.returncode,
        "lines_out": len(lines),
        "baseline_json_roundtrip_s": round(baseline, 2),
        "ratio_to_baseline": round(seconds / baseline, 1),
    }


def constructed_cases() -> list[Case]:
    """Our own letters with their transcripts and (for demo patients) records."""
    path = DATA / "constructed.jsonl"
    if not path.is_file():
        return []
    from clarke_desktop.agent.context import retrieve_context
    from clarke_desktop.demo_data import ensure_database
    from clarke_desktop.fhir.local import LocalFhirClient

    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    fhir = LocalFhirClient(ensure_database()) if any(i.get("patient") for i in items) else None
    cases = [Case(i["id"], i["transcript"], i["letter"], retrieve_context(fhir, i["patient"]) if i.get("patient") else None)
             for i in items]  # fmt: skip
    if fhir:
        fhir.close()
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--primock", type=Path, default=primock.DEFAULT_DIR)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    notes = [Case(c.id, c.dialogue, c.note) for c in primock.load(args.primock)]
    labels = json.loads((DATA / "primock57_absent.json").read_text(encoding="utf-8"))["absent"]
    constructed = constructed_cases()
    from clarke_desktop.asr.correction import Term as T

    result = {
        "faithful_notes": faithful(notes, labels),
        "planted": planted(notes + constructed),
        "correction": correction(),
        "dialogue_rewrites": dialogue_rewrites(notes),
        "cli_batch": cli_batch(notes),
        "speed": {
            "verify_ms_per_1000_words": speed(notes, lambda c: verify_letter(c.letter, c.transcript, None)),
            "correct_ms_per_1000_words": speed(
                notes,
                lambda c: correct_transcript(
                    Transcript(text=c.transcript, origin="typed"),
                    [T("metformin", "medication"), T("ramipril", "medication")],
                ),
            ),
        },
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
