"""Discrepancies between what was said in the consultation and what the record holds.

Deterministic rules over the transcript's reading and the record's (no model), so a flag always
names both sources: the transcript span (with audio times when the words have them) and the record
resource. Kinds:
- dose / frequency: a current medicine said with a dose or frequency other than its prescription;
- stopped_medicine: said to be stopped or not taken while the record lists it;
- unrecorded_medicine: a medicine the patient takes that is not on the record;
- allergy: an allergy said that the record lacks, denied while recorded, or another reaction;
- allergy_class: a drug said or prescribed that belongs to a recorded allergy's class (penicillins,
  ACE inhibitors...), or an allergy said to a class the record prescribes from, whatever the cue;
- lab_value: a result said that matches none recorded for the same test (units converted);
- diagnosis: a diagnosis discussed that is not on the problem list.
Negated, hypothetical, planned and family-history mentions are not statements about the record.
"""

from __future__ import annotations

from decimal import Decimal

from rapidfuzz import fuzz

from clarke_desktop.clinical_text import lexicon, vocabulary
from clarke_desktop.clinical_text.compare import comparable, same_value
from clarke_desktop.clinical_text.context import FAMILY, NEGATION, TAKING, Status, preceding
from clarke_desktop.clinical_text.reader import DrugMention, Reading, TestMention, read
from clarke_desktop.clinical_text.record import (
    RecordedAllergy,
    RecordedMedicine,
    RecordedValue,
    RecordFacts,
)
from clarke_desktop.clinical_text.tokens import tokenize
from clarke_desktop.clinical_text.units import same_amount
from clarke_desktop.letters.fact_check import Sources
from clarke_desktop.record_lines import medication_line
from clarke_desktop.schemas import Discrepancy, PatientContext, SoundAlikeFlag, SourceRef, Transcript
from clarke_desktop.uk_format import record_date

_ALLERGY_DENIALS = (
    "no allergies", "no known allergies", "no drug allergies", "no known drug allergies", "nkda",
    "not allergic to anything", "no allergy", "don't have any allergies", "not allergic to any",
    "no known drug allergy", "haven't got any allergies", "no medication allergies",
)  # fmt: skip


class _Rules:
    def __init__(self, sources: Sources, record: RecordFacts) -> None:
        self.transcript = sources.transcript
        self.said: Reading = sources.said
        self.record = record
        self.spans = sources.spans
        self.items: list[Discrepancy] = []
        self._seen: set[tuple[str, int, str]] = set()

    # -- output --

    def add(self, kind: str, ti: int, tj: int, description: str, *, subject: str, record_text: str | None,
            source: SourceRef | None, severity: str = "high", said_value: str | None = None,
            record_value: str | None = None) -> None:  # fmt: skip
        start, end = self.said.span(ti, tj) if tj > ti else (0, 0)
        key = (kind, start, subject)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(
            Discrepancy(
                id=f"{kind}-{start}-{len(self.items)}",
                kind=kind,  # type: ignore[arg-type]
                description=description,
                subject=subject,
                transcript=self.spans(start, end),
                record_text=record_text,
                record_source=source,
                severity=severity,  # type: ignore[arg-type]
                said_value=said_value,
                record_value=record_value,
            )
        )

    def snippet(self, ti: int, tj: int) -> str:
        return self.said.snippet(ti, tj)

    # -- medicines --

    def medicines(self) -> None:
        for drug in self.said.drugs:
            if drug.is_class or drug.status in {
                Status.ALLERGY,
                Status.FAMILY,
                Status.HYPOTHETICAL,
                Status.NEGATED,
            }:
                continue
            recorded = self.record.medicine(drug.canonical)
            if drug.status is Status.STOPPED:
                if recorded:
                    med = recorded[0].medication
                    first = max(0, drug.ti - len(preceding(self.said.words, drug.ti, 4)))
                    self.add("stopped_medicine", first, drug.tj,
                             f"Said the patient is not taking {med.name}; the record lists it as {med.status or 'active'}.",
                             subject=drug.canonical, record_text=medication_line(med), source=med.source, severity="medium")  # fmt: skip
                continue
            if drug.status is Status.PLANNED:
                continue  # a planned change, not a statement about the current prescription
            if recorded:
                self._dose_and_frequency(drug, recorded)
            elif self._taken(drug) and not any(a.covers(drug.canonical) for a in self.record.allergies):
                names = ", ".join(m.medication.name for m in self.record.medicines) or "none recorded"
                self.add("unrecorded_medicine", drug.ti, drug.tj,
                         f"The patient appears to take {self.snippet(drug.ti, drug.tj)}, which is not on the medication record.",
                         subject=drug.canonical, record_text=f"Current medications: {names}", source=None,
                         severity="medium")  # fmt: skip

    def _taken(self, drug: DrugMention) -> bool:
        """Said as something the patient takes: a taking cue earlier in the sentence, or a dose or
        frequency said with it."""
        if drug.doses or drug.frequencies:
            return True
        sentence = self.said.sentence[drug.ti]
        k = drug.ti - 1
        while k >= 0 and self.said.sentence[k] == sentence:
            if self.said.words[k] in TAKING:
                return True
            k -= 1
        return False

    def _dose_and_frequency(self, drug: DrugMention, recorded: list[RecordedMedicine]) -> None:
        med = recorded[0].medication
        record_doses = [q for m in recorded for q in m.doses if q.unit in {"mg", "g", "mcg", "units", "mL"}]
        for q in drug.doses:
            if q.unit not in {"mg", "g", "mcg", "units", "mL"} or not record_doses:
                continue
            if not any(same_amount(q.value, q.unit, r.value, r.unit) for r in record_doses):
                self.add("dose", drug.ti, max(drug.tj, q.tj),
                         f"{med.name}: dose said {self.snippet(q.ti, q.tj)}; prescribed {med.dose or medication_line(med)}.",
                         subject=drug.canonical, record_text=medication_line(med), source=med.source,
                         said_value=q.written(), record_value=record_doses[0].written())  # fmt: skip
                return
        record_freqs = [f for m in recorded for f in m.frequencies]
        if any(f.per_day is None for f in record_freqs):
            return  # taken as required: how often it is used is no discrepancy with the prescription
        for f in drug.frequencies:
            if record_freqs and not any(r.same_as(f) or f.same_as(r) for r in record_freqs):
                self.add("frequency", drug.ti, max(drug.tj, f.tj),
                         f"{med.name}: frequency said '{self.snippet(f.ti, f.tj)}'; prescribed {med.frequency or med.dosage_text}.",
                         subject=drug.canonical, record_text=medication_line(med), source=med.source, severity="medium",
                         said_value=self.snippet(f.ti, f.tj), record_value=med.frequency or None)  # fmt: skip
                return

    # -- allergies --

    def allergies(self) -> None:
        recorded = [a for a in self.record.allergies if not a.no_known]
        record_text = "Recorded allergies: " + (
            ", ".join(a.allergy.substance for a in self.record.allergies) or "none recorded"
        )
        for drug in self.said.drugs:
            if drug.status is not Status.ALLERGY:
                continue
            negated = any(w in NEGATION for w in preceding(self.said.words, drug.ti, 5))
            match = next((a for a in recorded if _allergy_matches(a, drug)), None)
            if negated and match:
                self.add("allergy", max(0, drug.ti - 4), drug.tj,
                         f"Said not allergic to {self.snippet(drug.ti, drug.tj)}; the record has an allergy to {match.allergy.substance}.",
                         subject=drug.canonical, record_text=record_text, source=match.allergy.source)  # fmt: skip
            elif not negated and not match:
                self.add("allergy", drug.ti, drug.tj,
                         f"Allergy to {self.snippet(drug.ti, drug.tj)} mentioned; it is not on the allergy record.",
                         subject=drug.canonical, record_text=record_text,
                         source=recorded[0].allergy.source if recorded else None)  # fmt: skip
                if drug.is_class:
                    self._said_class_vs_record(drug)
            elif match and match.allergy.reaction:
                self._reaction(drug, match, record_text)
        for ti, tj, status in self.said.allergens:
            word = self.said.words[ti]
            if status is Status.ALLERGY and not any(
                word in a.allergy.substance.lower() for a in self.record.allergies
            ):
                if any(w in NEGATION for w in preceding(self.said.words, ti, 6)):
                    continue
                self.add("allergy", ti, tj, f"Allergy to {self.snippet(ti, tj)} mentioned; it is not on the allergy record.",
                         subject=word, record_text=record_text, source=recorded[0].allergy.source if recorded else None)  # fmt: skip
        if recorded:
            words = self.said.words
            for denial in _ALLERGY_DENIALS:
                phrase = [t.lower for t in tokenize(denial)]
                for k in range(len(words) - len(phrase) + 1):
                    if words[k : k + len(phrase)] == phrase:
                        self.add("allergy", k, k + len(phrase),
                                 "Allergies denied in the consultation; the record has "
                                 + ", ".join(a.allergy.substance for a in recorded) + ".",
                                 subject="allergies", record_text=record_text, source=recorded[0].allergy.source)  # fmt: skip

    def _reaction(self, drug: DrugMention, match: RecordedAllergy, record_text: str) -> None:
        recorded_group = _reaction_group(match.allergy.reaction or "")
        if recorded_group is None:
            return
        words = self.said.words
        end = min(len(words), drug.tj + 14)
        for k in range(drug.tj, end):
            for group, phrases in lexicon.REACTIONS.items():
                for phrase in phrases:
                    parts = phrase.split()
                    if words[k : k + len(parts)] == parts:
                        if group != recorded_group:
                            self.add("allergy", drug.ti, k + len(parts),
                                     f"{self.snippet(drug.ti, drug.tj)} allergy: reaction said '{self.snippet(k, k + len(parts))}'; "
                                     f"the record has {match.allergy.reaction}" + (f" ({match.allergy.severity})" if match.allergy.severity else "") + ".",
                                     subject=drug.canonical, record_text=record_text, source=match.allergy.source,
                                     said_value=self.snippet(k, k + len(parts)), record_value=match.allergy.reaction)  # fmt: skip
                        return

    def _said_class_vs_record(self, said: DrugMention) -> None:
        """ "Allergic to ACE inhibitors" while the record prescribes ramipril."""
        for med in self.record.medicines:
            if med.canonical and med.canonical in vocabulary.class_members(said.canonical):
                self.add("allergy_class", said.ti, said.tj,
                         f"Allergy to {said.canonical} said; the record prescribes {med.medication.name}, one of them.",
                         subject=said.canonical, record_text=medication_line(med.medication), source=med.medication.source)  # fmt: skip

    def allergy_classes(self) -> None:
        """Any drug said (not as an allergy) or prescribed that a recorded allergy covers by class."""
        recorded = [a for a in self.record.allergies if a.canonical and not a.no_known]
        for drug in self.said.drugs:
            if drug.is_class or drug.status in {Status.ALLERGY, Status.FAMILY}:
                continue
            for allergy in recorded:
                cls = allergy.cross_class(drug.canonical) or (
                    allergy.canonical if allergy.covers(drug.canonical) else None
                )
                if cls and not _avoidance(self.said, drug):
                    self.add("allergy_class", drug.ti, drug.tj,
                             f"{self.snippet(drug.ti, drug.tj)} discussed; the record has an allergy to {allergy.allergy.substance}"
                             + (f" ({cls})." if cls != allergy.canonical or allergy.is_class else "."),
                             subject=cls if allergy.is_class or cls != allergy.canonical else drug.canonical,
                             record_text=f"Recorded allergy: {allergy.allergy.substance}", source=allergy.allergy.source)  # fmt: skip
        for med in self.record.medicines:
            if med.canonical is None:
                continue
            for allergy in recorded:
                cls = allergy.cross_class(med.canonical) or (
                    allergy.canonical if allergy.covers(med.canonical) else None
                )
                if cls:
                    self.add("allergy_class", 0, 0,
                             f"The record prescribes {med.medication.name} and records an allergy to {allergy.allergy.substance} ({cls}).",
                             subject=cls, record_text=f"{medication_line(med.medication)}; allergy: {allergy.allergy.substance}",
                             source=med.medication.source)  # fmt: skip

    # -- results --

    def results(self) -> None:
        for test in self.said.tests:
            if test.status in {Status.FAMILY, Status.HYPOTHETICAL, Status.NEGATED} or not test.values:
                continue
            recorded = self.record.values_of(test.test)
            if not recorded:
                continue
            if any(r.lab in self.record.context.vital_signs for r in recorded) and _taken_today(
                self.said, test
            ):
                continue  # a reading taken in this consultation is new, not a statement about the record
            for q in test.values:
                ok = any(
                    same_value(test.test, q, v, over, r.unit)
                    for r in recorded
                    for v, over, _src, _day, _shown in r.values
                ) or _within_reference(q.value, recorded)
                if not comparable(test.test, q, recorded[0].unit):
                    continue  # another unit system that cannot be compared
                if not ok:
                    lab = recorded[0].lab
                    unit = f" {lab.unit}" if lab.unit else ""
                    self.add("lab_value", test.ti, q.tj,
                             f"{lab.name}: value said {self.snippet(q.ti, q.tj)}; recorded {lab.value}{unit} on {record_date(lab.date)}"
                             + (f" (previously {lab.previous_value})" if lab.previous_value else "") + ".",
                             subject=test.test, record_text=f"{lab.name} {lab.value}{unit} ({record_date(lab.date)})",
                             source=lab.source, said_value=q.written(), record_value=f"{lab.value}{unit}")  # fmt: skip
                    break

    # -- diagnoses --

    def diagnoses(self) -> None:
        problems = [p.name.lower() for p in self.record.context.problem_list]
        words = self.said.words
        for canonical, phrases in lexicon.DIAGNOSES.items():
            on_list = any(
                phrase in problem or canonical in problem or fuzz.token_set_ratio(canonical, problem) >= 90
                for phrase in (*phrases, canonical)
                for problem in problems
                if len(phrase) > 3
            )
            if on_list:
                continue
            for phrase in phrases:
                parts = [t.lower for t in tokenize(phrase)]
                hit = next(
                    (k for k in range(len(words) - len(parts) + 1)
                     if words[k : k + len(parts)] == parts
                     and not any(w in NEGATION or w in FAMILY for w in preceding(words, k, 6))),
                    None,
                )  # fmt: skip
                if hit is not None:
                    names = ", ".join(p.name for p in self.record.context.problem_list) or "empty"
                    self.add("diagnosis", hit, hit + len(parts),
                             f"{self.snippet(hit, hit + len(parts))} was discussed; it is not on the problem list.",
                             subject=canonical, record_text=f"Problem list: {names}", source=None, severity="medium")  # fmt: skip
                    break


def _allergy_matches(recorded: RecordedAllergy, said: DrugMention) -> bool:
    if recorded.canonical is None:
        return False
    if said.is_class:
        return recorded.canonical == said.canonical or recorded.canonical in vocabulary.class_members(
            said.canonical
        )
    return recorded.covers(said.canonical)


def _avoidance(reading: Reading, drug: DrugMention) -> bool:
    """ "Avoid amoxicillin", "not amoxicillin because of the allergy": the conflict is already handled."""
    before = preceding(reading.words, drug.ti, 5)
    return any(w in {"avoid", "avoiding", "instead", "not", "no", "never", "alternative"} for w in before)


def _reaction_group(text: str) -> str | None:
    words = [t.lower for t in tokenize(text)]
    for group, phrases in lexicon.REACTIONS.items():
        for phrase in phrases:
            parts = phrase.split()
            if any(words[k : k + len(parts)] == parts for k in range(len(words))):
                return group
    return None


def _taken_today(reading: Reading, test: TestMention) -> bool:
    end = test.values[-1].tj if test.values else test.tj
    return any(w in {"today", "now"} for w in reading.words[test.tj : end + 3])


def _within_reference(value: Decimal, recorded: list[RecordedValue]) -> bool:
    """ "Your best should be around 450": a value the record's reference range names."""
    for r in recorded:
        if r.lab.reference_range and any(q.value == value for q in read(r.lab.reference_range).quantities):
            return True
    return False


def _speech_recognition(rules: _Rules) -> None:
    """Every record-aware correction and every sound-alike flag is put to the clinician: a correction
    they have not seen must never stand in the record. Offsets are mapped from the text as heard to
    the corrected text."""
    transcript = rules.transcript
    edits = sorted(
        [(c.char_start, c.char_end, c) for c in transcript.corrections if c.char_start is not None and c.char_end is not None]
        + [(f.char_start, f.char_end, f) for f in transcript.sound_alike_flags if f.char_start is not None and f.char_end is not None],
        key=lambda e: e[0],
    )  # fmt: skip
    shift = 0
    for start, end, edit in edits:
        new_start = start + shift
        if isinstance(edit, SoundAlikeFlag):
            span = rules.spans(new_start, new_start + (end - start))
            names = " or ".join(edit.candidates)
            rules.items.append(Discrepancy(
                id=f"other-sound-alike-{start}", kind="other", subject=edit.heard, transcript=span,
                description=f"Heard '{edit.heard}', which looks or sounds like {names} on the record. "
                            "Both are real names: confirm which was meant.",
                record_text=f"On the record: {names}", severity="high",
            ))  # fmt: skip
            continue
        new_end = new_start + len(edit.corrected)
        shift += len(edit.corrected) - (end - start)
        rules.items.append(Discrepancy(
            id=f"other-corrected-{start}", kind="other", subject=edit.corrected, transcript=rules.spans(new_start, new_end),
            description=f"Speech recognition heard '{edit.original}'; corrected to '{edit.corrected}' from the record. "
                        "Check it was what was said.",
            record_text=f"On the record: {edit.corrected}", record_source=edit.source, severity="low",
        ))  # fmt: skip


def is_red(d: Discrepancy) -> bool:
    """A red item: an allergy conflict, or any high-severity one (a dose said against the record).
    Never resolved by default (headless runs must name it) nor dismissed without a specific reason."""
    return d.severity == "high" or d.kind in ("allergy", "allergy_class")


def detect_discrepancies(
    transcript: Transcript | str, context: PatientContext, *, sources: Sources | None = None
) -> list[Discrepancy]:
    """All discrepancies between the consultation and the record, in transcript order. `sources`:
    the transcript and this record already read (shared with the fact check)."""
    src = sources if sources is not None and sources.record is not None else Sources.of(transcript, context)
    assert src.record is not None
    rules = _Rules(src, src.record)
    _speech_recognition(rules)
    rules.medicines()
    rules.allergies()
    rules.allergy_classes()
    rules.results()
    rules.diagnoses()
    return sorted(rules.items, key=lambda d: d.transcript.char_start or 0)
