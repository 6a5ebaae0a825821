"""The letter writer: a ClinicalDocument from a transcript and a PatientContext.

Facts sections are rendered from the record in code (exact values). Narrative sections are
written by the letter model (role "letter_writer"), one prompt per section, streamed through
`on_event` so the GUI can show text as it arrives. Then discrepancies (transcript vs record) and
the fact check of the narrative are computed in code.

Every section's prompt starts with the same instructions, record, transcript and aside (the
template puts the section's own request last), and says so (`Turn.shared_prefix`): the in-process
engine reads that prefix once per letter and reuses it for each section and for regenerations of
the same draft; a server's prompt cache can do the same. An engine that can write the sections
together (`can_write_together`: llama.cpp in process) is given them all at once and streams them
side by side; the others get them one after another. Either way every section is announced in
the letter's order before any text, events carry each section's progress (`SectionProgress`:
index of count, how many together, tokens, measured tokens/s, time left) and each request's
prompt tokens asked for and really read (`RequestUsage`).

Token budget (stated strategy, never silent truncation): if the transcript does not fit the
model's context beside the record and the answer, it is summarised in parts by the same model
and the letter is written from the summaries, with a warning naming how; if the record alone or
the summaries still do not fit, ContextTooLong is raised with a message for the clinician.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from clarke_desktop.cancel import CancelToken
from clarke_desktop.letters.discrepancies import detect_discrepancies
from clarke_desktop.letters.fact_check import Sources, fact_check, record_sources
from clarke_desktop.letters.facts import render_facts
from clarke_desktop.letters.progress import ProgressMeter, RequestUsage, SectionProgress, TogetherMeter
from clarke_desktop.letters.templates import DocumentSpec, SectionSpec, document_spec
from clarke_desktop.llm.base import (
    ContextTooLong,
    InvalidModelOutput,
    LlmEngine,
    LlmError,
    ModelMissing,
    ModelOutOfMemory,
    Turn,
)
from clarke_desktop.llm.prompt import neutralise, render_text
from clarke_desktop.llm.streaming import GenerationStats, WritesTogether
from clarke_desktop.record_lines import context_as_text, medication_line
from clarke_desktop.schemas import (
    ClinicalDocument,
    Clinician,
    DocumentSection,
    DocumentType,
    PatientContext,
    Transcript,
)
from clarke_desktop.templates import prompt_template_version, render_prompt
from clarke_desktop.uk_format import uk_date

logger = logging.getLogger(__name__)

DEFAULT_SECTION_TOKENS = 512
PART_SUMMARY_TOKENS = 384
_PROMPT_MARGIN = 16  # BOS and turn scaffolding


@dataclass(frozen=True)
class LetterEvent:
    """Progress of a document, for the GUI/pipeline.

    kinds: "stage" (text names it), "section_started", "text" (a streamed piece of `key`),
    "section_done" (`section` is final), "warning", "request_done" (a model request finished:
    `usage` says what it cost; also for the requests that summarise a long transcript).
    `progress` comes with a narrative section's "section_started", "text" and "section_done".
    """

    kind: Literal["stage", "section_started", "text", "section_done", "warning", "request_done"]
    key: str | None = None
    text: str = ""
    section: DocumentSection | None = None
    progress: SectionProgress | None = None
    usage: RequestUsage | None = None


OnEvent = Callable[[LetterEvent], None]


@dataclass
class PreparedTranscript:
    """The transcript text a section is written from: the transcript, or a summary of it."""

    text: str
    is_summary: bool = False
    warnings: list[str] = field(default_factory=list)


# The warning a section left empty carries (after the reason, which names the section in quotes).
EMPTY_SECTION = "The section is empty: write it or regenerate it."


def _as_transcript(transcript: Transcript | str) -> Transcript:
    return transcript if isinstance(transcript, Transcript) else Transcript(text=transcript, origin="typed")


def _prompt_tokens(engine: LlmEngine, turns: list[Turn]) -> int:
    counter = getattr(engine, "prompt_tokens", None)
    if callable(counter):
        return len(counter(turns))
    return engine.count_tokens(render_text(turns)) + _PROMPT_MARGIN


def _thread_stats(engine: LlmEngine) -> GenerationStats | None:
    """The engine's figures for this thread's last request, where it keeps them (llama.cpp does;
    a server only when it reports them)."""
    stats = getattr(engine, "thread_stats", None)
    return stats if isinstance(stats, GenerationStats) else None


def _request(
    engine: LlmEngine,
    turns: list[Turn],
    *,
    max_tokens: int,
    temperature: float,
    cancel: CancelToken | None,
    on_event: OnEvent | None,
    key: str | None = None,
    on_piece: Callable[[str, int], None] | None = None,
) -> tuple[str, RequestUsage]:
    """One model request, streamed: `on_piece(piece, tokens so far)` as text arrives, and a
    "request_done" event with its usage at the end. Returns the text and the usage."""
    started = time.perf_counter()
    first_at: float | None = None
    stats: GenerationStats | None = None
    pieces: list[str] = []
    for piece in engine.stream(turns, max_tokens=max_tokens, temperature=temperature, cancel=cancel):
        if first_at is None:
            first_at = time.perf_counter()
            stats = _thread_stats(engine)  # this request's: the stream holds the engine meanwhile
        pieces.append(piece)
        if on_piece:
            on_piece(piece, stats.completion_tokens if stats else len(pieces))
    ended = time.perf_counter()
    stats = stats or _thread_stats(engine)
    usage = RequestUsage(
        prompt_tokens=stats.prompt_tokens if stats else _prompt_tokens(engine, turns),
        prompt_evaluated=stats.prompt_evaluated if stats else None,
        completion_tokens=stats.completion_tokens if stats else len(pieces),
        first_token_s=round(first_at - started, 4) if first_at is not None else None,
        seconds=round(ended - started, 4),
    )
    if on_event:
        on_event(LetterEvent("request_done", key=key, usage=usage))
    return "".join(pieces), usage


def section_turns(
    spec: DocumentSpec,
    section: SectionSpec,
    context: PatientContext,
    transcript: PreparedTranscript,
    *,
    instruction: str | None = None,
    current: str | None = None,
    aside: str = "",
) -> list[Turn]:
    """The prompt for one narrative section; every untrusted text is neutralised.

    Its shared prefix (`Turn.shared_prefix`) is what does not depend on the section: the prompt up
    to where a prompt for another section (with no instruction) first differs, cut back to a line
    start. A line start, because a tokeniser does not merge across a newline, so the prefix
    tokenised alone gives the same tokens as the whole text (checked on Gemma 3)."""
    shared = dict(
        label=spec.label,
        voice=spec.voice,
        record=neutralise(context_as_text(context)),
        transcript=neutralise(transcript.text),
        transcript_is_summary=transcript.is_summary,
        aside=neutralise(aside.strip()),
    )
    prompt = render_prompt(
        "section.j2",
        heading=section.heading,
        guidance=section.guidance,
        instruction=neutralise(instruction) if instruction else None,
        current=neutralise(current or ""),
        **shared,
    )
    other = render_prompt(
        "section.j2", heading="\x00", guidance="\x00", instruction=None, current="", **shared
    )
    same = len(os.path.commonprefix([prompt, other]))
    return [Turn("user", prompt, shared_prefix=prompt.rfind("\n", 0, same) + 1)]


def _split_by_tokens(engine: LlmEngine, text: str, limit: int) -> list[str]:
    """Split text at sentence (else word) boundaries into parts of at most `limit` tokens."""
    sentences = [s for s in re.split(r"(?<=[.?!])\s+|\n+", text) if s.strip()]
    pieces: list[str] = []
    for sentence in sentences:
        if engine.count_tokens(sentence) <= limit:
            pieces.append(sentence)
            continue
        words, current = sentence.split(), list[str]()
        for word in words:
            if current and engine.count_tokens(" ".join([*current, word])) > limit:
                pieces.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            pieces.append(" ".join(current))
    parts: list[str] = []
    for piece in pieces:
        if parts and engine.count_tokens(parts[-1] + " " + piece) <= limit:
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def prepare_transcript(
    engine: LlmEngine,
    spec: DocumentSpec,
    context: PatientContext,
    transcript: Transcript,
    *,
    max_tokens: int,
    aside: str = "",
    current: str = "",
    cancel: CancelToken | None = None,
    on_event: OnEvent | None = None,
) -> PreparedTranscript:
    """The transcript text to prompt with: as is when it fits, else summarised in parts."""
    longest = max(
        (s for s in spec.sections if s.kind == "narrative"), key=lambda s: len(s.guidance) + len(s.heading)
    )
    without = _prompt_tokens(
        engine, section_turns(spec, longest, context, PreparedTranscript(""), aside=aside, current=current)
    )
    room = engine.context_length - max_tokens - without
    needed = engine.count_tokens(neutralise(transcript.text))
    if needed <= room:
        return PreparedTranscript(transcript.text)
    if room < 64:
        raise ContextTooLong(
            f"The patient record ({without} tokens with the instructions) leaves no room for the "
            f"transcript in {engine.info.name}'s context of {engine.context_length} tokens. "
            "Use a model with a longer context."
        )
    if on_event:
        on_event(LetterEvent("stage", text="Summarising a long transcript in parts"))
    part_overhead = _prompt_tokens(
        engine, [Turn("user", render_prompt("transcript_part.j2", part=99, parts=99, transcript=""))]
    )
    part_limit = engine.context_length - PART_SUMMARY_TOKENS - part_overhead
    if part_limit < 128:
        raise ContextTooLong(
            f"{engine.info.name}'s context ({engine.context_length} tokens) is too small to summarise the transcript."
        )
    parts = _split_by_tokens(engine, transcript.text, part_limit)
    summaries = []
    for number, part in enumerate(parts, start=1):
        turns = [
            Turn(
                "user",
                render_prompt(
                    "transcript_part.j2", part=number, parts=len(parts), transcript=neutralise(part)
                ),
            )
        ]
        summary, _usage = _request(
            engine, turns, max_tokens=PART_SUMMARY_TOKENS, temperature=0.0, cancel=cancel, on_event=on_event
        )
        summary = summary.strip()
        summaries.append(f"[Part {number} of {len(parts)}] {summary}")
    joined = "\n".join(summaries)
    if engine.count_tokens(neutralise(joined)) > room:
        raise ContextTooLong(
            f"The transcript ({needed} tokens) does not fit {engine.info.name}'s context even when "
            f"summarised in {len(parts)} parts (room for {room} tokens). Split the consultation or use "
            "a model with a longer context."
        )
    warning = (
        f"The transcript ({needed} tokens) did not fit the model's context beside the record; it was "
        f"summarised in {len(parts)} parts and the narrative was written from those summaries. "
        "Check the letter against the full transcript (discrepancies and fact check used the full text)."
    )
    return PreparedTranscript(joined, is_summary=True, warnings=[warning])


_HEADING_ECHO = re.compile(r"^\s*(?:#+\s*|\*\*)?(?P<h>[^\n:*]{3,80}?)(?:\*\*)?\s*:?\s*\n", re.IGNORECASE)


def clean_narrative(text: str, heading: str) -> str:
    """Strip a repeated heading and markdown emphasis; keep the model's words otherwise."""
    text = text.strip()
    match = _HEADING_ECHO.match(text + "\n")
    if match and match.group("h").strip().lower() == heading.lower():
        text = text[match.end() :].strip()
    return text.replace("**", "").strip()


_DATA_TAGS = "record|transcript|note|current|instruction"
_DATA_BLOCK = re.compile(rf"<({_DATA_TAGS})\b[^>]*>.*?</\1>", re.DOTALL)
_TAG_LINE = re.compile(rf"^\s*</?({_DATA_TAGS})\b[^>]*>\s*$", re.MULTILINE)
_WORD = re.compile(r"[a-z0-9]+")
_ECHO_RUN = 8  # words in a row shared with our instructions: a narrative never needs that many


def echoes_instructions(text: str, prompt: str) -> bool:
    """True when the model repeated the prompt's own instructions (small models do) instead of
    writing the section. Only our wording counts: the record and the transcript are left out, as a
    narrative may rightly repeat them."""
    ours = _WORD.findall(_DATA_BLOCK.sub(" ", prompt).lower())
    said = _WORD.findall(text.lower())
    runs = {tuple(ours[i : i + _ECHO_RUN]) for i in range(len(ours) - _ECHO_RUN + 1)}
    shared = sum(tuple(said[i : i + _ECHO_RUN]) in runs for i in range(len(said) - _ECHO_RUN + 1))
    return shared >= 2


def unusable_reason(text: str, prompt: str) -> str | None:
    """Why a section's text is not a section (None when it may be one): the prompt's instructions
    or markup copied back, or the same lines over and over. Small models (the embedded demo) do
    all three; the clinician gets an empty section and the reason, not the junk."""
    if echoes_instructions(text, prompt):
        return "repeated its instructions"
    if _TAG_LINE.search(text):
        return "copied the prompt's markup"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= 3 and len(set(lines)) <= len(lines) // 2:
        return "repeated the same lines"
    return None


def _write_section(
    engine: LlmEngine,
    turns: list[Turn],
    section: SectionSpec,
    *,
    max_tokens: int,
    meter: ProgressMeter,
    on_event: OnEvent | None,
    cancel: CancelToken | None,
) -> str:
    needed = _prompt_tokens(engine, turns)
    if needed + max_tokens > engine.context_length:
        raise ContextTooLong(
            f"The prompt for '{section.heading}' ({needed} tokens) plus its answer ({max_tokens}) "
            f"does not fit {engine.info.name}'s context of {engine.context_length} tokens."
        )

    def on_piece(piece: str, tokens: int) -> None:
        meter.update(tokens, time.perf_counter())
        if on_event:
            on_event(LetterEvent("text", key=section.key, text=piece, progress=meter.snapshot()))

    text, usage = _request(
        engine, turns, max_tokens=max_tokens, temperature=0.3, cancel=cancel, on_event=on_event,
        key=section.key, on_piece=on_piece,
    )  # fmt: skip
    meter.finish(usage.completion_tokens, time.perf_counter())
    return _section_text(text, section, turns)


def _section_text(text: str, section: SectionSpec, turns: list[Turn]) -> str:
    """The model's answer as the section's text; InvalidModelOutput when it is not one."""
    content = clean_narrative(text, section.heading)
    if not content:
        raise InvalidModelOutput(f"The model wrote nothing for '{section.heading}'.")
    reason = unusable_reason(content, "\n".join(t.text for t in turns))
    if reason:
        raise InvalidModelOutput(f"The model {reason} instead of writing '{section.heading}'.")
    return content


def _together(engine: LlmEngine, prompts: list[list[Turn]], max_tokens: int) -> WritesTogether | None:
    """The engine, when it writes these sections at the same time (llama.cpp in process does when
    they share their prefix and fit its context side by side; a server is asked one by one)."""
    if (
        len(prompts) >= 2
        and isinstance(engine, WritesTogether)
        and engine.can_write_together(prompts, max_tokens)
    ):
        return engine
    return None


def _write_together(
    engine: WritesTogether,
    name: str,
    sections: list[tuple[SectionSpec, list[Turn]]],
    *,
    meter: TogetherMeter,
    on_event: OnEvent | None,
    cancel: CancelToken | None,
    timings: dict[str, float],
    warnings: list[str],
) -> dict[str, DocumentSection]:
    """Write the narrative sections at the same time; events as each grows and as each is done
    (in the order they finish). A section the model did not write is left empty, and said so."""
    texts: list[list[str]] = [[] for _ in sections]
    written: dict[str, DocumentSection] = {}
    started = time.perf_counter()
    prompts = [turns for _spec, turns in sections]
    stream = engine.stream_together(prompts, max_tokens=meter.max_tokens, temperature=0.3, cancel=cancel)
    for piece in stream:
        spec, turns = sections[piece.index]
        now = time.perf_counter()
        stats = piece.stats
        tokens = stats.completion_tokens if stats else len(texts[piece.index])
        meter.update(piece.index, tokens, now)
        if piece.text:
            texts[piece.index].append(piece.text)
            if on_event:
                progress = meter.snapshot(piece.index)
                on_event(LetterEvent("text", key=spec.key, text=piece.text, progress=progress))
        if not piece.done:
            continue
        meter.finish(piece.index, tokens, now)
        if on_event and stats is not None:
            usage = RequestUsage(
                prompt_tokens=stats.prompt_tokens, prompt_evaluated=stats.prompt_evaluated,
                completion_tokens=stats.completion_tokens, first_token_s=round(stats.prompt_seconds, 4),
                seconds=round(now - started, 4),
            )  # fmt: skip
            on_event(LetterEvent("request_done", key=spec.key, usage=usage))
        try:
            content = _section_text("".join(texts[piece.index]), spec, turns)
        except InvalidModelOutput as exc:
            content = ""
            warnings.append(f"{exc} {EMPTY_SECTION}")
            if on_event:
                on_event(LetterEvent("warning", key=spec.key, text=warnings[-1]))
        section = _narrative(spec, content, name)
        written[spec.key] = section
        timings[f"section.{spec.key}_s"] = round(now - started, 4)
        if on_event:
            on_event(
                LetterEvent(
                    "section_done", key=spec.key, section=section, progress=meter.snapshot(piece.index)
                )
            )
    return written


def _narrative(spec: SectionSpec, content: str, model_name: str) -> DocumentSection:
    return DocumentSection(
        key=spec.key, heading=spec.heading, content=content, kind="narrative", generated_by=model_name
    )


def _header(doc_type: DocumentType, context: PatientContext, clinician: Clinician | None) -> dict[str, str]:
    d = context.demographics
    gp_lines = [x for x in (d.gp_name, d.gp_practice, d.gp_address) if x]
    if doc_type == "patient":
        addressee = "\n".join(x for x in (d.name, d.address) if x)
        salutation = f"Dear {d.name}," if d.name else "Dear patient,"
    elif doc_type == "referral":
        addressee = ""
        salutation = "Dear colleague,"
    elif doc_type == "soap":
        addressee, salutation = "", ""
    else:
        addressee = "\n".join(gp_lines)
        salutation = f"Dear {d.gp_name}," if d.gp_name else "Dear Doctor,"
    sign_off = "\n".join(x for x in (clinician.name, clinician.title) if x) if clinician else ""
    return {"addressee": addressee, "salutation": salutation, "sign_off": sign_off}


def _uk_long_date(day: date) -> str:
    """7 December 2026 (strftime's no-padding day flag is glibc-only: Windows has none)."""
    return f"{day.day} {day:%B %Y}"


def write_document(
    transcript: Transcript | str,
    context: PatientContext,
    engine: LlmEngine,
    *,
    doc_type: DocumentType = "clinic",
    clinician: Clinician | None = None,
    consultation_id: str | None = None,
    letter_date: date | None = None,
    max_tokens: int = DEFAULT_SECTION_TOKENS,
    aside: str = "",
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    timings: dict[str, float] | None = None,
) -> ClinicalDocument:
    """Write the whole document. LlmError (and Cancelled) propagate; nothing is half-delivered."""
    started = time.perf_counter()
    transcript = _as_transcript(transcript)
    spec = document_spec(doc_type)
    timings = dict(timings or {})
    warnings = [f"Record: {w}" for w in context.retrieval_warnings] + list(context.model_warnings)
    if engine.info.demo:  # said once, even when the model's own name already says it
        says_so = "not for clinical use" in engine.info.name.lower()
        warnings.insert(
            0, f"Written by {engine.info.name}{'' if says_so else ': a demo model, not for clinical use'}."
        )
    if not transcript.text.strip():
        raise ValueError("The transcript is empty: record or type the consultation first.")

    narratives = [s for s in spec.sections if s.kind == "narrative"]
    turns_for: dict[str, list[Turn]] = {}
    if narratives:
        summary_started = time.perf_counter()
        prepared = prepare_transcript(
            engine, spec, context, transcript, max_tokens=max_tokens, aside=aside, cancel=cancel,
            on_event=on_event,
        )  # fmt: skip
        warnings += prepared.warnings
        if prepared.is_summary:
            timings["transcript_summary_s"] = round(time.perf_counter() - summary_started, 4)
        turns_for = {s.key: section_turns(spec, s, context, prepared, aside=aside) for s in narratives}
    together = _together(engine, list(turns_for.values()), max_tokens)
    meter = ProgressMeter(len(narratives), max_tokens)
    written: dict[str, DocumentSection] = {}

    def write_now(section_spec: SectionSpec) -> None:
        """Announce a section and write it: a facts section, or a narrative one by one."""
        narrative = section_spec.kind == "narrative"
        section_started = time.perf_counter()
        if narrative:
            meter.start(section_started)
        if on_event:
            progress = meter.snapshot() if narrative else None
            on_event(
                LetterEvent(
                    "section_started", key=section_spec.key, text=section_spec.heading, progress=progress
                )
            )
        if section_spec.kind == "facts":
            content, sources = render_facts(section_spec.renderer or section_spec.key, context)
            section = DocumentSection(
                key=section_spec.key,
                heading=section_spec.heading,
                content=content,
                kind="facts",
                fhir_sources=list(dict.fromkeys(sources)),
            )
        else:
            turns = turns_for[section_spec.key]
            try:
                content = _write_section(
                    engine, turns, section_spec, max_tokens=max_tokens, meter=meter, on_event=on_event,
                    cancel=cancel,
                )  # fmt: skip
            except InvalidModelOutput as exc:  # the section is left for the clinician, and said so
                content = ""
                warnings.append(f"{exc} {EMPTY_SECTION}")  # exc names the section (see _write_section)
                if on_event:
                    on_event(LetterEvent("warning", key=section_spec.key, text=warnings[-1]))
            section = _narrative(section_spec, content, engine.info.name)
        timings[f"section.{section_spec.key}_s"] = round(time.perf_counter() - section_started, 4)
        written[section.key] = section
        if on_event:
            progress = meter.snapshot() if narrative else None
            on_event(LetterEvent("section_done", key=section.key, section=section, progress=progress))

    together_meter = TogetherMeter(len(narratives), max_tokens)
    for section_spec in spec.sections:
        if cancel:
            cancel.raise_if_cancelled()
        if together is None or section_spec.kind != "narrative":
            write_now(section_spec)
        elif on_event:  # written below, all at once: its card is shown now, in the letter's order
            progress = together_meter.snapshot(narratives.index(section_spec))
            on_event(
                LetterEvent(
                    "section_started", key=section_spec.key, text=section_spec.heading, progress=progress
                )
            )
    if together is not None:
        said = len(warnings)
        try:
            written |= _write_together(
                together, engine.info.name, [(s, turns_for[s.key]) for s in narratives], meter=together_meter,
                on_event=on_event, cancel=cancel, timings=timings, warnings=warnings,
            )  # fmt: skip
        except (ModelOutOfMemory, ModelMissing):
            raise  # the pipeline's retry frees memory and writes one by one; a closed model is not ours
        except LlmError as exc:
            # A batched step failed where single ones may not (a GPU kernel, say): write the sections
            # one after another instead, and stop writing together on this engine.
            logger.warning("writing the sections together failed (%s); writing them one by one", exc)
            together.set_together(False)
            del warnings[said:]
            for section_spec in narratives:
                if cancel:
                    cancel.raise_if_cancelled()
                write_now(section_spec)
    sections = [written[s.key] for s in spec.sections]

    d = context.demographics
    doc = ClinicalDocument(
        consultation_id=consultation_id or f"cons-{uuid.uuid4()}",
        doc_type=doc_type,
        letter_date=_uk_long_date(letter_date or date.today()),
        patient_name=d.name,
        patient_dob=uk_date(d.date_of_birth) if d.date_of_birth else "",
        nhs_number=d.nhs_number,
        sections=sections,
        medications_list=[medication_line(m) for m in context.medications],
        model=engine.info,
        prompt_template_version=prompt_template_version(),
        warnings=warnings,
        **_header(doc_type, context, clinician),  # type: ignore[arg-type]  # addressee, salutation, sign_off: str
    )
    if on_event:
        on_event(LetterEvent("stage", text="Checking for discrepancies"))
    stage = time.perf_counter()
    read_once = Sources.of(transcript, context)  # the transcript and the record, read once for both checks
    doc.discrepancies = detect_discrepancies(transcript, context, sources=read_once)
    timings["discrepancies_s"] = round(time.perf_counter() - stage, 4)
    stage = time.perf_counter()
    doc.fact_check = fact_check(doc, transcript, context, sources=read_once)
    timings["fact_check_s"] = round(time.perf_counter() - stage, 4)
    _cite_sources(doc)
    timings["letter_total_s"] = round(time.perf_counter() - started, 4)
    doc.timings = timings
    unsupported = sum(not item.supported for item in doc.fact_check)
    if unsupported:
        doc.warnings.append(
            f"{unsupported} fact(s) in the narrative are not supported by the transcript or record."
        )
    return doc


def _cite_sources(doc: ClinicalDocument, keys: set[str] | None = None) -> None:
    for section in doc.sections:
        if section.kind == "narrative" and (keys is None or section.key in keys):
            section.fhir_sources = record_sources(doc.fact_check, section.key)


def regenerate_section(
    doc: ClinicalDocument,
    key: str,
    instruction: str,
    *,
    transcript: Transcript | str,
    context: PatientContext,
    engine: LlmEngine,
    max_tokens: int = DEFAULT_SECTION_TOKENS,
    aside: str = "",
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
) -> ClinicalDocument:
    """A copy of `doc` with only narrative section `key` rewritten following the instruction.

    `aside` is the clinician's note the letter was written with: given, the prompt starts exactly
    as the letter's did, so an engine that kept the letter's prefix reads only the new request.
    On failure an LlmError propagates and the caller still holds the unchanged original (also
    when the model writes nothing, or repeats its instructions: InvalidModelOutput).
    """
    transcript = _as_transcript(transcript)
    spec = document_spec(doc.doc_type)
    section_spec = spec.section(key)
    if section_spec.kind != "narrative":
        raise ValueError(
            f"'{section_spec.heading}' is rendered from the record and cannot be regenerated; edit it directly."
        )
    current = next(s for s in doc.sections if s.key == key)
    prepared = prepare_transcript(
        engine, spec, context, transcript, max_tokens=max_tokens, aside=aside, current=current.content,
        cancel=cancel,
    )  # fmt: skip
    turns = section_turns(
        spec,
        section_spec,
        context,
        prepared,
        instruction=instruction.strip() or "Rewrite this section.",
        current=current.content,
        aside=aside,
    )
    started = time.perf_counter()
    meter = ProgressMeter(1, max_tokens)
    meter.start(started)
    if on_event:
        on_event(
            LetterEvent("section_started", key=key, text=section_spec.heading, progress=meter.snapshot())
        )
    content = _write_section(
        engine, turns, section_spec, max_tokens=max_tokens, meter=meter, on_event=on_event, cancel=cancel
    )
    new = doc.model_copy(deep=True)
    for index, section in enumerate(new.sections):
        if section.key == key:
            new.sections[index] = section.model_copy(
                update={"content": content, "generated_by": engine.info.name}
            )
            if on_event:
                on_event(
                    LetterEvent(
                        "section_done", key=key, section=new.sections[index], progress=meter.snapshot()
                    )
                )
    new = recheck_section(new, key, transcript=transcript, context=context)
    new.timings[f"regenerate.{key}_s"] = round(time.perf_counter() - started, 4)
    return new


def recheck_section(
    doc: ClinicalDocument, key: str, *, transcript: Transcript | str, context: PatientContext | None
) -> ClinicalDocument:
    """What depends on one section's text, redone on its current text (regenerated or edited by the
    clinician): its fact check and cited sources, and the warning that it was left empty once it
    has text. Without a context (none saved) only the stale facts and warning go."""
    new = doc.model_copy(deep=True)
    section = next(s for s in new.sections if s.key == key)
    new.fact_check = [item for item in new.fact_check if item.section_key != key]
    if context is not None:
        new.fact_check += fact_check(new, _as_transcript(transcript), context, keys={key})
    order = {s.key: i for i, s in enumerate(new.sections)}
    new.fact_check.sort(key=lambda item: (order.get(item.section_key, 0), item.char_start))
    _cite_sources(new, {key})
    if section.content.strip():
        new.warnings = [
            w for w in new.warnings if not (w.endswith(EMPTY_SECTION) and f"'{section.heading}'" in w)
        ]
    return new


def draft_letter(
    *,
    consultation_id: str,
    transcript: Transcript,
    context: PatientContext,
    doc_type: DocumentType,
    engine: LlmEngine,
    clinician: Clinician | None = None,
    aside: str = "",
    letter_date: str | None = None,
    max_tokens: int | None = None,
    on_section: OnEvent | None = None,
    cancel: CancelToken | None = None,
) -> ClinicalDocument:
    """The pipeline's entry point (keyword arguments, ISO letter date); `on_section` gets LetterEvents."""
    return write_document(
        transcript,
        context,
        engine,
        doc_type=doc_type,
        clinician=clinician,
        consultation_id=consultation_id,
        letter_date=date.fromisoformat(letter_date[:10]) if letter_date else None,
        max_tokens=max_tokens or DEFAULT_SECTION_TOKENS,
        aside=aside,
        on_event=on_section,
        cancel=cancel,
    )
