"""Fact check of a letter against the consultation and the record.

Every drug, dose, frequency, test value, date, allergy and other number in the text is listed with
what supports it: transcript spans and/or record entries. Support is clause-bound: a dose is
supported only by the same drug with the same dose (said together, or the drug's record entry), a
frequency likewise, a value only by the same test (units converted), a date by the same date. A
drug said in the consultation but written with a dose or frequency it was not said or prescribed
with is unsupported too: that is how a drug swapped for another one the patient mentioned shows.
In a ClinicalDocument only the narrative sections are checked: facts sections are rendered from
the record in code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from clarke_desktop.clinical_text import vocabulary
from clarke_desktop.clinical_text.compare import same_value
from clarke_desktop.clinical_text.context import Status
from clarke_desktop.clinical_text.dates import MONTHS, same_date
from clarke_desktop.clinical_text.frequency import Duration, Frequency
from clarke_desktop.clinical_text.reader import (
    DateSpan,
    DrugMention,
    Quantity,
    Reading,
    TestMention,
    bound_quantities,
    read,
)
from clarke_desktop.clinical_text.record import RecordFacts, read_record
from clarke_desktop.clinical_text.spans import SpanMaker
from clarke_desktop.clinical_text.units import same_amount
from clarke_desktop.record_lines import medication_line
from clarke_desktop.schemas import (
    ClinicalDocument,
    DocumentSection,
    Evidence,
    FactCheckItem,
    PatientContext,
    SourceRef,
    Transcript,
)

_MAX_EVIDENCE = 3


@dataclass(slots=True)
class Fact:
    text: str
    kind: str  # date | number | dose | frequency | drug | allergy | lab
    start: int
    end: int
    supported: bool
    evidence: list[Evidence]
    group: int | None = None  # facts read as one clause (a drug with its dose and frequency) share it


class Sources:
    """What the consultation said and what the record holds, read once and indexed for lookups."""

    def __init__(self, transcript: Transcript, record: RecordFacts | None, *, locale: str = "GB") -> None:
        self.transcript = transcript
        self.locale = locale
        self.said = read(transcript.text, dialogue=True, locale=locale)
        self.record = record
        self.spans = SpanMaker(transcript)
        self.drugs: dict[str, list[DrugMention]] = defaultdict(list)
        for d in self.said.drugs:
            self.drugs[d.canonical].append(d)
        self.tests: dict[str, list[TestMention]] = defaultdict(list)
        for t in self.said.tests:
            self.tests[t.test].append(t)

    @classmethod
    def of(
        cls, transcript: Transcript | str, context: PatientContext | None, *, locale: str = "GB"
    ) -> Sources:
        """Read a transcript (typed text when given a string) and, when given, the record."""
        if isinstance(transcript, str):
            transcript = Transcript(text=transcript, origin="typed")
        return cls(transcript, read_record(context) if context else None, locale=locale)

    def said_span(self, ti: int, tj: int) -> Evidence:
        start, end = self.said.span(ti, tj)
        return Evidence(kind="transcript", span=self.spans(start, end), text=self.said.text[start:end])


def _record_evidence(source: SourceRef | None, text: str) -> Evidence:
    return Evidence(kind="record", source=source, text=text)


# --- support, one rule per kind ----------------------------------------------------------------


def _dose_support(dose: Quantity, drug: str | None, src: Sources) -> list[Evidence]:
    found: list[Evidence] = []
    if drug is not None:
        for said in src.drugs.get(drug, []):
            for q in said.doses:
                if same_amount(q.value, q.unit, dose.value, dose.unit):
                    found.append(src.said_span(min(said.ti, q.ti), max(said.tj, q.tj)))
        for med in src.record.medicine(drug) if src.record else []:
            if any(same_amount(q.value, q.unit, dose.value, dose.unit) for q in [*med.doses, *med.strengths]):
                found.append(_record_evidence(med.medication.source, medication_line(med.medication)))
        return found
    for q in src.said.quantities:  # a dose written without its drug: the same amount said as a dose
        if q.is_dose and same_amount(q.value, q.unit, dose.value, dose.unit):
            found.append(src.said_span(q.ti, q.tj))
    return found


def _frequency_support(freq: Frequency, drug: str | None, src: Sources) -> list[Evidence]:
    found: list[Evidence] = []
    if drug is not None:
        for said in src.drugs.get(drug, []):
            for f in said.frequencies:
                if freq.same_as(f):
                    found.append(src.said_span(min(said.ti, f.ti), max(said.tj, f.tj)))
        for med in src.record.medicine(drug) if src.record else []:
            if any(freq.same_as(f) for f in med.frequencies):
                found.append(_record_evidence(med.medication.source, medication_line(med.medication)))
        return found
    return [src.said_span(f.ti, f.tj) for f in src.said.frequencies if freq.same_as(f)]


def _drug_support(drug: DrugMention, src: Sources) -> list[Evidence]:
    found = [src.said_span(d.ti, d.tj) for d in src.drugs.get(drug.canonical, [])]
    as_class = vocabulary.class_named(
        drug.canonical
    )  # "penicillin" said in allergy talk was read as the class
    if as_class:
        found += [src.said_span(d.ti, d.tj) for d in src.drugs.get(as_class, [])]
    if src.record:
        found += [
            _record_evidence(m.medication.source, medication_line(m.medication))
            for m in src.record.medicine(drug.canonical)
        ]
        found += [_record_evidence(a.allergy.source, a.allergy.substance) for a in src.record.allergies
                  if a.canonical == drug.canonical]  # fmt: skip
    return found


_ALLERGY_TALK = frozenset(
    {"allergic", "allergy", "allergies", "reaction", "reactions", "intolerant", "react"}
)


def _allergy_talk(reading: Reading, d: DrugMention) -> bool:
    """Said as an allergy, or named shortly after an allergy question ("Any allergies?" "Only penicillin.")."""
    return d.status is Status.ALLERGY or any(
        w in _ALLERGY_TALK for w in reading.words[max(0, d.ti - 25) : d.ti]
    )


def _allergy_support(drug: DrugMention, src: Sources) -> list[Evidence]:
    found = []
    for d in src.said.drugs:
        # "penicillin" said as an allergy means the class, however it was read
        said_class = d.canonical if d.is_class else vocabulary.class_named(d.canonical)
        if _allergy_talk(src.said, d) and (
            d.canonical == drug.canonical
            or (said_class is not None and drug.canonical in vocabulary.class_members(said_class))
            or (drug.is_class and d.canonical in vocabulary.class_members(drug.canonical))
        ):
            found.append(src.said_span(d.ti, d.tj))
    if src.record:
        for a in src.record.allergies:
            if a.covers(drug.canonical) or (
                drug.is_class and a.canonical in vocabulary.class_members(drug.canonical)
            ):
                found.append(_record_evidence(a.allergy.source, a.allergy.substance))
    return found


def _lab_support(test: str, value: Quantity, src: Sources) -> list[Evidence]:
    found = []
    for said in src.tests.get(test, []):
        for q in said.values:
            if same_value(test, value, q.value, q.over, q.unit):
                found.append(src.said_span(min(said.ti, q.ti), max(said.tj, q.tj)))
    for recorded in src.record.values_of(test) if src.record else []:
        for v, over, source, day, shown in recorded.values:
            if same_value(test, value, v, over, recorded.unit):
                unit = f" {recorded.lab.unit}" if recorded.lab.unit else ""
                found.append(_record_evidence(source, f"{recorded.lab.name} {shown}{unit} ({day[:10]})"))
    return found


def _number_support(value: Quantity, src: Sources) -> list[Evidence]:
    found = []
    for q in src.said.quantities:
        # "6/10" (a score) is supported by "six out of ten" or by "six" said as the answer
        same_over = q.over == value.over or (value.over == 10 and q.over is None)
        if (
            q.value == value.value
            and same_over
            and (value.unit is None or q.unit is None or q.unit == value.unit)
        ):
            found.append(src.said_span(q.ti, q.tj))
    if value.unit is None and value.over is None:
        found += [src.said_span(d.ti, d.tj) for d in src.said.durations if d.count == value.value]
        found += [src.said_span(f.ti, f.tj) for f in src.said.frequencies if f.count == value.value]
    if src.record:
        age = src.record.context.demographics.age
        if age is not None and value.value == age and value.unit is None:
            found.append(_record_evidence(src.record.context.demographics.source, f"age {age}"))
        for recorded in src.record.values:
            for v, over, source, day, shown in recorded.values:
                if v == value.value and over == value.over:
                    found.append(_record_evidence(source, f"{recorded.lab.name} {shown} ({day[:10]})"))
    return found


def _duration_support(duration: Duration, src: Sources) -> list[Evidence]:
    found = [src.said_span(d.ti, d.tj) for d in src.said.durations if duration.same_as(d)]
    if not found and duration.upper_days is None:  # "aged 16yrs" written, "I was sixteen" said
        found = [src.said_span(q.ti, q.tj) for q in src.said.quantities
                 if q.unit is None and q.over is None and q.value == duration.count]  # fmt: skip
    return found


def _date_support(date: DateSpan, src: Sources) -> list[Evidence]:
    """The same date said of the same event (an unknown event agrees with any), or recorded."""
    iso = date.iso
    found = []
    for d in src.said.dates:
        if same_date(iso, d.iso) and date.same_event(d.event):
            found.append(src.said_span(d.ti, d.tj))
    year = iso[:4] if iso[:4].isdigit() else None
    if year and not found:  # "August of twenty nineteen": the year said as words, the month named nearby
        month = int(iso[5:7]) if len(iso) >= 7 else None
        for q in src.said.quantities:
            if str(q.value) == year:
                near = src.said.words[max(0, q.ti - 4) : q.ti]
                if month is None or any(MONTHS.get(w) == month for w in near):
                    found.append(src.said_span(q.ti, q.tj))
    if src.record:
        tests = {v.test for v in src.record.values}
        for recorded, source, shown in src.record.dates:
            same = same_date(iso, recorded)
            if same and date.event in tests:  # a result's date: only that test's dates
                same = any(
                    value_date[:10] == recorded
                    for v in src.record.values_of(date.event)
                    for *_, value_date, _ in v.values
                )
            if same:
                found.append(_record_evidence(source, shown))
    return found


# --- the check ----------------------------------------------------------------------------------


def check_text(text: str, src: Sources) -> list[Fact]:
    """Every fact in `text` with its support, in text order."""
    letter = read(text, locale=src.locale)
    facts: list[Fact] = []

    def add(kind: str, ti: int, tj: int, evidence: list[Evidence], supported: bool | None = None,
            group: int | None = None) -> Fact:  # fmt: skip
        start, end = letter.span(ti, tj)
        fact = Fact(text[start:end], kind, start, end, bool(evidence) if supported is None else supported,
                    evidence[:_MAX_EVIDENCE], group)  # fmt: skip
        facts.append(fact)
        return fact

    for d in letter.dates:
        add("date", d.ti, d.tj, _date_support(d, src))
    for drug in letter.drugs:
        if drug.status is Status.ALLERGY:
            add("allergy", drug.ti, drug.tj, _allergy_support(drug, src))
            continue
        if drug.is_class:
            continue  # "statins" in a plan names no prescription
        bound_ok = True
        group = drug.ti if drug.doses or drug.frequencies else None
        for q in drug.doses:
            bound_ok &= add("dose", q.ti, q.tj, _dose_support(q, drug.canonical, src), group=group).supported
        for f in drug.frequencies:
            bound_ok &= add(
                "frequency", f.ti, f.tj, _frequency_support(f, drug.canonical, src), group=group
            ).supported
        evidence = _drug_support(drug, src)
        add("drug", drug.ti, drug.tj, evidence, bool(evidence) and bound_ok, group)
    for start, end, _status in letter.allergens:
        word = letter.words[start]
        evidence = [src.said_span(k, k + 1) for k, w in enumerate(src.said.words) if w == word][:1]
        if src.record:
            evidence += [_record_evidence(a.allergy.source, a.allergy.substance) for a in src.record.allergies
                         if word in a.allergy.substance.lower()]  # fmt: skip
        add("allergy", start, end, evidence)
    for test in letter.tests:
        for q in test.values:
            add(
                "lab",
                q.ti,
                q.tj,
                _lab_support(test.test, q, src),
                group=test.ti if len(test.values) > 1 else None,
            )
    bound = bound_quantities(letter)
    for q in letter.quantities:
        if q.ti in bound:
            continue
        if q.is_dose and q.unit != "units":  # "14 units/week" of alcohol is no dose
            add("dose", q.ti, q.tj, _dose_support(q, None, src))
        else:
            add("number", q.ti, q.tj, _number_support(q, src))
    drug_freqs = {f.ti for d in letter.drugs for f in d.frequencies}
    for f in letter.frequencies:
        if f.ti not in drug_freqs:
            add("frequency", f.ti, f.tj, _frequency_support(f, None, src))
    for duration in letter.durations:
        add("number", duration.ti, duration.tj, _duration_support(duration, src))
    return sorted(facts, key=lambda f: (f.start, f.end))


def verify_letter(
    letter: str, transcript: Transcript | str, context: PatientContext | None, *, locale: str = "GB"
) -> list[Fact]:
    """Facts of a whole letter (headings included) against the transcript and, when given, the
    record. `locale` "US" reads numeric dates month-first."""
    return check_text(letter, Sources.of(transcript, context, locale=locale))


def fact_check(
    doc: ClinicalDocument,
    transcript: Transcript | str,
    context: PatientContext,
    *,
    keys: set[str] | None = None,
    sources: Sources | None = None,
) -> list[FactCheckItem]:
    """Fact-check the narrative sections (only `keys` when given), in document order. `sources`:
    the transcript and record already read (shared with the discrepancy rules)."""
    src = sources or Sources.of(transcript, context)
    items: list[FactCheckItem] = []
    for section in doc.sections:
        if section.kind == "narrative" and (keys is None or section.key in keys):
            items.extend(_item(section, fact) for fact in check_text(section.content, src))
    return items


def _item(section: DocumentSection, fact: Fact) -> FactCheckItem:
    return FactCheckItem(
        section_key=section.key,
        text=fact.text,
        kind=fact.kind,  # type: ignore[arg-type]
        char_start=fact.start,
        char_end=fact.end,
        supported=fact.supported,
        evidence=fact.evidence,
        group=fact.group,
    )


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
