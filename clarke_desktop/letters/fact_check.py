"""Fact check of the model-written (narrative) sections of a document.

Every number, dose, drug, allergen and date in a narrative section is listed with where it is
supported: a transcript span (with audio times when known) and/or a record resource. Anything
found in neither is `supported=False`, for the clinician to check before signing. Facts sections
are not checked: they are rendered from the record in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz

from clarke_desktop.letters import lexicon
from clarke_desktop.letters.textscan import (
    DOSE_UNITS,
    NumberMention,
    Token,
    find_dates,
    find_numbers,
    tokenize,
    transcript_span,
    word_char_offsets,
)
from clarke_desktop.schemas import (
    ClinicalDocument,
    DocumentSection,
    Evidence,
    FactCheckItem,
    PatientContext,
    SourceRef,
    Transcript,
)


@dataclass
class _RecordIndex:
    numbers: list[tuple[NumberMention, SourceRef, str]] = field(default_factory=list)
    dates: list[tuple[str, SourceRef, str]] = field(default_factory=list)
    names: list[tuple[str, SourceRef, str]] = field(default_factory=list)  # lowercase word, source, text

    @classmethod
    def of(cls, context: PatientContext) -> _RecordIndex:
        index = cls()

        def numbers(text: str | None, unit: str | None, source: SourceRef | None) -> None:
            if not text or source is None:
                return
            for n in find_numbers(tokenize(f"{text} {unit or ''}")):
                index.numbers.append((n, source, f"{text} {unit or ''}".strip()))

        def date(value: str | None, source: SourceRef | None) -> None:
            if value and source is not None:
                index.dates.append((value[:10], source, value[:10]))

        demo = context.demographics
        if demo.source:
            if demo.age is not None:
                index.numbers.append(
                    (find_numbers(tokenize(str(demo.age)))[0], demo.source, f"age {demo.age}")
                )
            date(demo.date_of_birth, demo.source)
        for lab in [*context.recent_labs, *context.vital_signs]:
            numbers(lab.value, lab.unit, lab.source)
            numbers(lab.previous_value, lab.unit, lab.previous_source or lab.source)
            date(lab.date, lab.source)
            date(lab.previous_date, lab.previous_source or lab.source)
        for med in context.medications:
            numbers(med.dose, None, med.source)
            numbers(med.dosage_text, None, med.source)
            for word in tokenize(med.name):
                if word.lower.isalpha() and len(word.lower) > 3:
                    index.names.append((word.lower, med.source, med.name))
                    break
        for allergy in context.allergies:
            for word in tokenize(allergy.substance):
                if len(word.lower) > 3:
                    index.names.append((word.lower, allergy.source, allergy.substance))
        for problem in context.problem_list:
            date(problem.onset, problem.source)
        for report in context.recent_imaging:
            date(report.date, report.source)
            numbers(report.summary, None, report.source)
        for encounter in context.recent_encounters:
            date(encounter.date, encounter.source)
        return index


def _same_quantity(a: NumberMention, b: NumberMention) -> bool:
    if a.in_mg() is not None and b.in_mg() is not None:
        return a.in_mg() == b.in_mg()
    if a.unit and b.unit and a.unit != b.unit:
        return False
    return a.value == b.value


def _name_matches(word: str, candidate: str) -> bool:
    if word == candidate:
        return True
    # ASR and the model may misspell a drug by a letter or two ("metformine").
    return len(word) > 4 and fuzz.ratio(word, candidate) >= 88


class _TranscriptIndex:
    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.tokens = tokenize(transcript.text)
        dates = find_dates(transcript.text)
        self.dates = dates
        self.numbers = [
            n for n in find_numbers(self.tokens) if not any(d.start <= n.start < d.end for d in dates)
        ]
        self.offsets = word_char_offsets(transcript)

    def span(self, start: int, end: int) -> Evidence:
        return Evidence(kind="transcript", span=transcript_span(self.transcript, start, end, self.offsets))

    def number(self, mention: NumberMention) -> Evidence | None:
        for n in self.numbers:
            if _same_quantity(mention, n):
                return self.span(n.start, n.end)
        return None

    def word(self, word: str) -> Evidence | None:
        for t in self.tokens:
            if _name_matches(t.lower, word):
                return self.span(t.start, t.end)
        return None

    def date(self, iso: str) -> Evidence | None:
        for d in self.dates:
            if d.iso == iso or (len(iso) == 7 and d.iso.startswith(iso)):
                return self.span(d.start, d.end)
        return None


def _is_drug_word(token: Token, record: _RecordIndex) -> bool:
    return token.lower in lexicon.DRUGS or any(token.lower == name for name, _, _ in record.names)


def check_section(
    section: DocumentSection, transcript: _TranscriptIndex, record: _RecordIndex
) -> list[FactCheckItem]:
    text = section.content
    items: list[FactCheckItem] = []
    dates = find_dates(text)
    for d in dates:
        evidence = [e for e in [transcript.date(d.iso)] if e]
        evidence += [
            Evidence(kind="record", source=src, text=shown)
            for iso, src, shown in record.dates
            if iso == d.iso or (len(d.iso) == 7 and iso.startswith(d.iso))
        ][:3]
        items.append(_item(section, text, "date", d.start, d.end, evidence))
    tokens = tokenize(text)
    for n in find_numbers(tokens):
        if any(d.start <= n.start < d.end for d in dates):
            continue
        kind = "dose" if n.unit in DOSE_UNITS else "number"
        evidence = [e for e in [transcript.number(n)] if e]
        evidence += [
            Evidence(kind="record", source=src, text=shown)
            for recorded, src, shown in record.numbers
            if _same_quantity(n, recorded)
        ][:3]
        items.append(_item(section, text, kind, n.start, n.end, evidence))
    for i, token in enumerate(tokens):
        if not _is_drug_word(token, record):
            continue
        before = {t.lower for t in tokens[max(0, i - 4) : i]}
        kind = "allergy" if before & {"allergic", "allergy", "allergies", "intolerant"} else "drug"
        evidence = [e for e in [transcript.word(token.lower)] if e]
        evidence += [
            Evidence(kind="record", source=src, text=shown)
            for name, src, shown in record.names
            if _name_matches(token.lower, name)
        ][:3]
        items.append(_item(section, text, kind, token.start, token.end, evidence))
    return sorted(items, key=lambda item: item.char_start)


def _item(section: DocumentSection, text: str, kind: str, start: int, end: int, evidence: list[Evidence]):
    return FactCheckItem(
        section_key=section.key,
        text=text[start:end],
        kind=kind,  # type: ignore[arg-type]
        char_start=start,
        char_end=end,
        supported=bool(evidence),
        evidence=evidence,
    )


def fact_check(
    doc: ClinicalDocument,
    transcript: Transcript | str,
    context: PatientContext,
    *,
    keys: set[str] | None = None,
) -> list[FactCheckItem]:
    """Fact-check the narrative sections (only `keys` when given), in document order."""
    if isinstance(transcript, str):
        transcript = Transcript(text=transcript, origin="typed")
    transcript_index = _TranscriptIndex(transcript)
    record_index = _RecordIndex.of(context)
    items: list[FactCheckItem] = []
    for section in doc.sections:
        if section.kind == "narrative" and (keys is None or section.key in keys):
            items.extend(check_section(section, transcript_index, record_index))
    return items


def record_sources(items: list[FactCheckItem], section_key: str) -> list[str]:
    """Resources cited by a section's supported facts (for DocumentSection.fhir_sources)."""
    refs = [
        e.source.reference
        for item in items
        if item.section_key == section_key
        for e in item.evidence
        if e.kind == "record" and e.source
    ]
    return list(dict.fromkeys(refs))
