"""`clarke-desktop verify` and `clarke-desktop correct`: the safety checks from the command line,
one consultation or a JSON Lines batch, JSON out. No language model is loaded.

The JSON shapes, options and exit codes are a contract (independent evaluation suites call these):
keep them stable. Offsets are Python code-point positions in the input exactly as given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from clarke_desktop.schemas import PatientContext, Transcript

EXIT_BATCH_UNREADABLE = 2


class _Records:
    """Patient contexts read from the FHIR store, opened on first need and read once per patient.

    CLARKE_FHIR_DB is opened read-only, exactly as it is (never seeded, never written); without it
    the app's own store is used, filled from the bundled demo data on first use."""

    def __init__(self) -> None:
        self._fhir: Any = None
        self._contexts: dict[str, PatientContext] = {}

    def context(self, patient_id: str | None) -> PatientContext | None:
        if not patient_id:
            return None
        if patient_id not in self._contexts:
            from clarke_desktop.agent.context import retrieve_context

            self._contexts[patient_id] = retrieve_context(self._client(), patient_id)
        return self._contexts[patient_id]

    def _client(self) -> Any:
        if self._fhir is None:
            from clarke_desktop.fhir.local import LocalFhirClient

            named = os.environ.get("CLARKE_FHIR_DB")
            if named:
                self._fhir = LocalFhirClient(named, read_only=True)
            else:
                from clarke_desktop.demo_data import ensure_database

                self._fhir = LocalFhirClient(ensure_database())
        return self._fhir

    def close(self) -> None:
        if self._fhir is not None:
            self._fhir.close()


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{what} file {path} is not UTF-8 text (byte {exc.start})") from exc


def _batch_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open("r", encoding="utf-8", newline="\n")
    except OSError as exc:
        click.echo(f"Error: cannot read batch file {path}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_BATCH_UNREADABLE)
    with handle:
        try:
            yield from enumerate(handle, start=1)  # a blank line is answered too (with its error)
        except UnicodeDecodeError as exc:
            click.echo(f"Error: batch file {path} is not UTF-8 text (byte {exc.start})", err=True)
            sys.exit(EXIT_BATCH_UNREADABLE)


_RECORDS: _Records | None = None  # one per process (batch workers open the store themselves)


def _records() -> _Records:
    global _RECORDS
    if _RECORDS is None:
        _RECORDS = _Records()
    return _RECORDS


def _close_records() -> None:
    global _RECORDS
    if _RECORDS is not None:
        _RECORDS.close()
        _RECORDS = None


def _answer_line(job: tuple[str, int, str, dict[str, str]]) -> str:
    """One batch line answered as one JSON line (runs in a worker process)."""
    command, n, line, options = job
    item_id: Any = None
    try:
        item = json.loads(line)
        if not isinstance(item, dict):
            raise ValueError("a line must be a JSON object")
        item_id = item.get("id")
        out = _ANSWERS[command](item, options)
    except Exception as exc:  # one bad line must not stop the batch
        out = {"id": item_id, "error": f"line {n}: {_message(exc)}"}
    return json.dumps(out, ensure_ascii=False)


def _run_batch(path: Path, command: str, options: dict[str, str] | None = None) -> None:
    """One JSON line out for each input line, in input order; a line that fails is answered with its
    error. Lines are answered by one worker process per core (the reading is pure CPU work)."""
    jobs = ((command, n, line, options or {}) for n, line in _batch_lines(path))
    workers = min(os.cpu_count() or 1, 8)
    if workers == 1:
        answers: Iterator[str] = map(_answer_line, jobs)
        for answer in answers:
            click.echo(answer)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork where there is one: the workers start with the vocabulary already loaded
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    _warm_up()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for answer in pool.map(_answer_line, jobs, chunksize=4):
            click.echo(answer)
            sys.stdout.flush()


def _warm_up() -> None:
    """Load what every line needs once, before forking."""
    from clarke_desktop.clinical_text.reader import read

    read("metformin 500 mg twice daily, HbA1c 58 on 15/03/2024")


def _message(exc: Exception) -> str:
    from clarke_desktop.fhir.client import FhirError

    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, FhirError | KeyError | ValueError | TypeError):
        return str(exc).strip("'\"") or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _text_field(item: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f'"{key}" must be a string')
    return value


def _patient_field(item: dict[str, Any]) -> str | None:
    value = item.get("patient")
    if value is not None and not isinstance(value, str):
        raise ValueError('"patient" must be a patient id string or null')
    return value or None


# --- verify -------------------------------------------------------------------------------------


def verify_object(
    item_id: Any, transcript: str, letter: str, context: PatientContext | None, locale: str = "GB"
) -> dict[str, Any]:
    from clarke_desktop.letters.discrepancies import detect_discrepancies
    from clarke_desktop.letters.fact_check import Sources, check_text

    said = Transcript(text=transcript, origin="imported_text")
    sources = Sources.of(said, context, locale=locale)  # read once for both checks
    facts = check_text(letter, sources) if letter else []
    found = detect_discrepancies(said, context, sources=sources) if context is not None else []
    return {
        "id": item_id,
        "facts": [
            {
                "text": f.text,
                "kind": f.kind,
                "start": f.start,
                "end": f.end,
                "supported": f.supported,
                "evidence": [_evidence(e) for e in f.evidence],
            }
            for f in facts
        ],
        "discrepancies": [
            {
                "kind": d.kind,
                "subject": d.subject,
                "said": d.transcript.text,
                "recorded": d.record_text,
                "start": d.transcript.char_start if d.transcript.char_end else None,
                "end": d.transcript.char_end if d.transcript.char_end else None,
                "source": d.record_source.reference if d.record_source else None,
                "description": d.description,
            }
            for d in found
        ],
    }


def _evidence(e: Any) -> dict[str, Any]:
    if e.kind == "transcript" and e.span is not None:
        return {"kind": "transcript", "text": e.span.text, "start": e.span.char_start, "end": e.span.char_end}
    return {"kind": "record", "text": e.text, "source": e.source.reference if e.source else None}


def _file_option(name: str, dest: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(name, dest, type=click.Path(path_type=Path, dir_okay=False), help=help_text)


def _batch_options(line_shape: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--id, --batch and --json, shared by verify and correct (their contract is the same)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--json", "as_json", is_flag=True, help="Print JSON (one object; JSON Lines with --batch)."
        )(command)
        command = _file_option("--batch", "batch_path", f"JSON Lines file: one {line_shape} object a line.")(
            command
        )
        return click.option("--id", "item_id", help="An id to echo in the output (single mode).")(command)

    return decorate


@click.command("verify")
@_file_option("--transcript", "transcript_path", "The consultation transcript (UTF-8 text).")
@_file_option("--letter", "letter_path", "The letter to check (UTF-8 text; headings included; may be empty).")
@click.option("--patient", "patient_id", help="FHIR Patient id: check against this record too.")
@click.option(
    "--locale",
    type=click.Choice(["GB", "US"], case_sensitive=False),
    default="GB",
    show_default=True,
    help="How numeric dates are read: GB day-first (15/03/2024), US month-first (03/15/2024).",
)
@_batch_options("{id, transcript, letter, patient}")
def verify(transcript_path: Path | None, letter_path: Path | None, patient_id: str | None, locale: str,
           item_id: str | None, batch_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Fact-check a letter against the transcript (and the record), and list the discrepancies
    between what was said and what the record holds.

    \b
    Example:
      clarke-desktop verify --transcript visit.txt --letter letter.txt --patient pt-001 --json
      clarke-desktop verify --batch pairs.jsonl --json > results.jsonl

    \b
    Batch input, one JSON object a line:
      {"id": "a1", "transcript": "...", "letter": "...", "patient": "pt-001"}   (patient may be null)
    Output, one object (one line per input line, in input order, with --batch):
      {"id", "facts": [{"text", "kind", "start", "end", "supported",
                        "evidence": [{"kind": "transcript"|"record", "text", "start"?, "end"?, "source"?}]}],
       "discrepancies": [{"kind", "subject", "said", "recorded", "start", "end", "source", "description"}]}
    Fact kinds: date, number, dose, frequency, drug, allergy, lab. Discrepancy kinds: dose,
    frequency, allergy, allergy_class, lab_value, unrecorded_medicine, stopped_medicine, diagnosis,
    other. Offsets are code-point positions: letter[start:end] == text; evidence and discrepancy
    offsets point into the transcript. A line that fails is answered {"id", "error"}.

    The record is read from CLARKE_FHIR_DB as it is (read-only, never seeded or written), else from
    the app's own store. No language model is loaded. Exit status: 0, or 2 when the batch file
    cannot be read.
    """
    try:
        if batch_path is not None:
            _run_batch(batch_path, "verify", {"locale": locale.upper()})
            return
        if transcript_path is None:
            raise click.UsageError("give --transcript FILE (and --letter FILE), or --batch FILE.jsonl")
        transcript = _read_text(transcript_path, "transcript")
        letter = _read_text(letter_path, "letter") if letter_path else ""
        try:
            context = _records().context(patient_id)
        except Exception as exc:
            raise click.ClickException(_message(exc)) from exc
        result = verify_object(item_id, transcript, letter, context, locale.upper())
        click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))
    finally:
        _close_records()


# --- correct ------------------------------------------------------------------------------------


def correct_object(
    item_id: Any, transcript: str, context: PatientContext | None, terms: list[str] | None
) -> dict[str, Any]:
    from clarke_desktop.asr.correction import correct_transcript, given_terms, vocabulary_from_context

    vocab = (vocabulary_from_context(context) if context else []) + given_terms(terms or [])
    result = correct_transcript(Transcript(text=transcript, origin="imported_text"), vocab)
    return {
        "id": item_id,
        "text": result.text,
        "corrections": [
            {"heard": c.original, "corrected": c.corrected, "start": c.char_start, "end": c.char_end}
            for c in result.corrections
        ],
        "flags": [
            {"heard": f.heard, "candidates": f.candidates, "start": f.char_start, "end": f.char_end}
            for f in result.sound_alike_flags
        ],
    }


def _terms_field(item: dict[str, Any]) -> list[str] | None:
    terms = item.get("terms")
    if terms is None:
        return None
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValueError('"terms" must be a list of strings or null')
    return terms


@click.command("correct")
@_file_option("--transcript", "transcript_path", "The transcript to correct (UTF-8 text).")
@click.option("--patient", "patient_id", help="FHIR Patient id whose record terms are the vocabulary.")
@click.option(
    "--term", "terms", multiple=True, help="An extra vocabulary term (repeatable; may be several words)."
)
@_batch_options("{id, transcript, patient, terms}")
def correct(transcript_path: Path | None, patient_id: str | None, terms: tuple[str, ...], item_id: str | None,
            batch_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Record-aware correction of a transcript: misheard record terms corrected, names split by
    the recogniser rejoined, and look-alikes of record terms that are themselves real drugs or
    medical terms flagged (never rewritten).

    \b
    Example:
      clarke-desktop correct --transcript visit.txt --patient pt-001 --json
      clarke-desktop correct --batch transcripts.jsonl --json > corrected.jsonl

    \b
    Batch input, one JSON object a line:
      {"id": "t1", "transcript": "...", "patient": "pt-001", "terms": ["gliclazide"]}
      (patient and terms may be null; terms are added to the patient's; a multi-word term is one term)
    Output, one object (one line per input line, in input order, with --batch):
      {"id", "text", "corrections": [{"heard", "corrected", "start", "end"}],
       "flags": [{"heard", "candidates": [str], "start", "end"}]}
    Offsets are code-point positions in the input transcript: transcript[start:end] == heard.
    A line that fails is answered {"id", "error"}.

    The record is read from CLARKE_FHIR_DB as it is (read-only), else from the app's own store. No
    language model is loaded. Exit status: 0, or 2 when the batch file cannot be read.
    """
    try:
        if batch_path is not None:
            _run_batch(batch_path, "correct")
            return
        if transcript_path is None:
            raise click.UsageError("give --transcript FILE, or --batch FILE.jsonl")
        transcript = _read_text(transcript_path, "transcript")
        try:
            context = _records().context(patient_id)
        except Exception as exc:
            raise click.ClickException(_message(exc)) from exc
        result = correct_object(item_id, transcript, context, list(terms) or None)
        click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))
    finally:
        _close_records()


def _verify_item(item: dict[str, Any], options: dict[str, str]) -> dict[str, Any]:
    return verify_object(
        item.get("id"), _text_field(item, "transcript"), _text_field(item, "letter", required=False),
        _records().context(_patient_field(item)), options.get("locale", "GB"),
    )  # fmt: skip


def _correct_item(item: dict[str, Any], _options: dict[str, str]) -> dict[str, Any]:
    return correct_object(
        item.get("id"),
        _text_field(item, "transcript"),
        _records().context(_patient_field(item)),
        _terms_field(item),
    )


_ANSWERS: dict[str, Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]] = {
    "verify": _verify_item,
    "correct": _correct_item,
}
COMMANDS = [verify, correct]
