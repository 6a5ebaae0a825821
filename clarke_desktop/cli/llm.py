"""`clarke-desktop letter` and `clarke-desktop ask`: the letter writer and the chart assistant from
the command line, on the app's own FHIR database and the installed (or embedded demo) models.

Thin: open the store and the engines, call `clarke_desktop.letters` / `clarke_desktop.agent`,
print, and map errors to a message and a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from clarke_desktop.schemas import DOCUMENT_TYPES, ClinicalDocument, Clinician, Transcript

EXIT_NO_ANSWER = 3  # the loop ended cleanly without an answer (rounds used up, invalid model output)


def _read_transcript(path: Path) -> Transcript:
    """UTF-8 text, or a Transcript JSON (keeps word timings for discrepancy spans)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"cannot read transcript file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"transcript file {path} is not UTF-8 text (byte {exc.start})") from exc
    if path.suffix.lower() == ".json":
        try:
            return Transcript.model_validate_json(text)
        except ValueError as exc:
            raise click.ClickException(f"transcript file {path} is not a Transcript JSON: {exc}") from exc
    if not text.strip():
        raise click.ClickException(f"transcript file {path} is empty")
    return Transcript(text=text.strip(), origin="imported_text")


def _engine(role: str):
    from clarke_desktop.llm.registry import get_engine

    return get_engine(role)  # type: ignore[arg-type]


@contextmanager
def _prefix_reuse(enabled: bool) -> Iterator[None]:
    """The letter engine's prefix reuse set for one command, then put back (the engine is shared by
    everything in this process). Reuse is the engines' default, so only turning it off touches
    the engine; one that cannot load is left for the letter to report."""
    from clarke_desktop.llm.base import LlmError

    switch = None
    if not enabled:
        try:
            engine = _engine("letter_writer")
            switch = getattr(engine, "set_prefix_reuse", None)
        except LlmError:
            pass
    if switch is None:
        yield
        return
    before = bool(getattr(engine, "prefix_reuse", True))
    switch(False)
    try:
        yield
    finally:
        switch(before)


def _clinician() -> Clinician | None:
    try:
        from clarke_desktop.config import load_settings

        c = load_settings().clinician
        return Clinician(name=c.name, title=c.title, specialty=getattr(c, "specialty", ""))
    except Exception:  # settings are optional for a command-line letter
        return None


def document_json(doc: ClinicalDocument) -> dict[str, Any]:
    model = doc.model
    return {
        "consultation_id": doc.consultation_id,
        "doc_type": doc.doc_type,
        "letter_date": doc.letter_date,
        "patient": {"name": doc.patient_name, "date_of_birth": doc.patient_dob, "nhs_number": doc.nhs_number},
        "addressee": doc.addressee,
        "salutation": doc.salutation,
        "sections": [
            {
                "key": s.key,
                "heading": s.heading,
                "content": s.content,
                "kind": s.kind,
                "fhir_sources": s.fhir_sources,
            }
            for s in doc.sections
        ],
        "sign_off": doc.sign_off,
        "discrepancies": [d.model_dump(mode="json") for d in doc.discrepancies],
        "fact_check": [f.model_dump(mode="json") for f in doc.fact_check],
        "model": {
            "name": model.name if model else None,
            "file": model.file if model else None,
            "sha256": model.sha256 if model else None,
            "demo": bool(model and model.demo),
            "backend": model.backend if model else None,
            "gpu_offload": bool(model and model.gpu_offload),
        },
        "prompt_template_version": doc.prompt_template_version,
        "timings": doc.timings,
        "warnings": doc.warnings,
    }


@click.command("letter")
@click.option("--patient", "patient_id", required=True, help="FHIR Patient id, e.g. pt-001.")
@click.option(
    "--transcript",
    "transcript_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Consultation transcript: UTF-8 text, or a Transcript JSON with word timings.",
)
@click.option(
    "--type", "doc_type", type=click.Choice(DOCUMENT_TYPES), default="clinic",
    show_default=True, help="Document to write.",
)  # fmt: skip
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: sections, discrepancies, fact_check, model, timings, and llm: "
    '{"prompt_tokens_requested": N, "prompt_tokens_evaluated": M, "requests": R, "prefix_reuse": bool, '
    '"sections_together": S} (N: every letter-model request\'s prompt length added up; M: what the '
    "engine really read, the rest came from the reused prefix; M is null when a server does not "
    "report it; S: how many narrative sections were written at the same time, 1 when one by one).",
)
@click.option(
    "--max-tokens",
    default=512,
    show_default=True,
    type=click.IntRange(1, 8192),
    help="Per narrative section.",
)
@click.option("--no-flags", is_flag=True, help="Skip the EHR model's clinical flags (record facts only).")
@click.option(
    "--no-prefix-reuse",
    is_flag=True,
    help="Read the whole prompt for every section, one section after another (for comparison: the "
    "way letters were written before). By default the instructions, record and transcript that "
    "every section's prompt starts with are read once per letter, and the in-process model writes "
    "the narrative sections together (llm.sections_together says how many). Only the time taken "
    "and llm.prompt_tokens_evaluated should differ: written one after another the text is the same "
    "with or without reuse; written together it can differ in rounding, as on another GPU.",
)
def letter(
    patient_id: str,
    transcript_path: Path,
    doc_type: str,
    as_json: bool,
    max_tokens: int,
    no_flags: bool,
    no_prefix_reuse: bool,
) -> None:
    """Write a clinical document from a transcript and the patient's record.

    Facts sections (results, medications, allergies) come from the record exactly; narrative
    sections are written by the letter model. A demo model is flagged in every output.

    Example: clarke-desktop letter --patient pt-001 --transcript consult.txt --json
    """
    from clarke_desktop.letters.progress import LlmUsage
    from clarke_desktop.letters.templates import render_document
    from clarke_desktop.session.errors import SessionError
    from clarke_desktop.session.letter import write_letter

    usage = LlmUsage()
    together = 1

    def progress(event: Any) -> None:
        nonlocal together
        if event.kind == "request_done" and event.usage is not None:
            usage.add(event.usage)
        if event.kind == "text" and event.progress is not None:
            together = max(together, event.progress.together)
        if not as_json and event.kind == "section_started":
            click.echo(f"... {event.text}", err=True)

    try:
        with _prefix_reuse(not no_prefix_reuse):
            doc = write_letter(
                patient_id, _read_transcript(transcript_path), doc_type=doc_type, max_tokens=max_tokens,
                with_flags=not no_flags, clinician=_clinician(), on_event=progress,
            )  # fmt: skip
    except SessionError as exc:
        raise click.ClickException(exc.message) from exc
    llm = usage.as_json() | {"prefix_reuse": not no_prefix_reuse, "sections_together": together}
    if as_json:
        click.echo(json.dumps(document_json(doc) | {"llm": llm}, indent=2, ensure_ascii=False))
        return
    click.echo(
        f"Prompt tokens: {llm['prompt_tokens_requested']} requested, "
        f"{llm['prompt_tokens_evaluated'] if llm['prompt_tokens_evaluated'] is not None else 'unknown'} read "
        f"by the model over {llm['requests']} request(s)",
        err=True,
    )
    click.echo(render_document(doc))
    if doc.discrepancies:
        click.echo("Discrepancies to resolve:")
        for d in doc.discrepancies:
            click.echo(f"- [{d.severity}] {d.description}")
    unsupported = [f for f in doc.fact_check if not f.supported]
    if unsupported:
        click.echo("Unsupported facts in the narrative (check before signing):")
        for f in unsupported:
            click.echo(f"- {f.section_key}: {f.text!r} ({f.kind})")
    for warning in doc.warnings:
        click.echo(f"Warning: {warning}", err=True)


@click.command("ask")
@click.option("--patient", "patient_id", required=True, help="FHIR Patient id, e.g. pt-001.")
@click.argument("question")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result (answer, citations, proposals, trace) as JSON."
)
@click.option(
    "--max-rounds", default=8, show_default=True, type=click.IntRange(1, 8), help="Agent rounds at most."
)
@click.option(
    "--max-tokens", default=320, show_default=True, type=click.IntRange(16, 4096), help="Per action."
)
def ask(patient_id: str, question: str, as_json: bool, max_rounds: int, max_tokens: int) -> None:
    """Ask the chart assistant a question about one patient's record.

    It searches and reads the record; any change it proposes is shown, never applied here.

    Example: clarke-desktop ask --patient pt-001 "When was her last eGFR?"
    """
    from clarke_desktop.agent.assistant import ask as run_ask
    from clarke_desktop.fhir.client import FhirError, FhirNotFound
    from clarke_desktop.llm.base import LlmError

    def show(step) -> None:
        if not as_json:
            click.echo(f"[{step.round}] {step.kind}: {step.summary}", err=True)

    try:
        from clarke_desktop.session.letter import open_record

        fhir = open_record()
        try:
            fhir.read("Patient", patient_id)
            result = run_ask(
                fhir, _engine("ehr_agent"), patient_id, question, max_rounds=max_rounds,
                on_step=show, action_max_tokens=max_tokens,
            )  # fmt: skip
        finally:
            fhir.close()
    except FhirNotFound as exc:
        raise click.ClickException(f"Patient {patient_id} is not in the record ({exc}).") from exc
    except (FhirError, LlmError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        if result.model and result.model.demo:
            click.echo(f"*** {result.model.name}: demo model, not for clinical use ***")
        click.echo(f"Answer: {result.answer}" if result.answer else f"No answer: {result.message}")
        if result.citations:
            click.echo("Sources: " + ", ".join(result.citations))
        if result.unverified_citations:
            click.echo("Cited but never retrieved (ignore): " + ", ".join(result.unverified_citations))
        for p in result.proposals:
            if p.status == "refused":
                click.echo(f"Refused proposal (not offered for approval): {p.summary}")
                for refusal in p.refusals:
                    click.echo(f"  not accepted: {refusal}")
            else:
                click.echo(f"Proposed change (not applied; approve it in the app): {p.summary}")
            for line in p.lines:  # every element it would write, one a line
                click.echo("    " + line.replace("\n", "\n      "))
            if p.status != "refused":
                click.echo(f"    (sha256 of the resource: {p.digest})")
        click.echo(f"Stopped: {result.stopped_reason} after {result.rounds} round(s)")
    sys.exit(0 if result.stopped_reason == "finished" else EXIT_NO_ANSWER)


COMMANDS = [letter, ask]
