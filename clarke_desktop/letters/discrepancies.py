"""Discrepancies between what was said in the consultation and what the record holds.

Deterministic rules over the transcript and the PatientContext (no model), so a flag always
names both sources: the transcript span (with audio times when the words have them) and the
record resource. Kinds: a dose or frequency said that differs from the prescription, an allergy
said that the record lacks (or denied when it is recorded), a result value said that matches no
recorded value, a diagnosis discussed that is not on the problem list, and a medicine the patient
says they take (or stopped) that the record disagrees with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from rapidfuzz import fuzz

from clarke_desktop.letters import lexicon
from clarke_desktop.letters.facts import uk_date
from clarke_desktop.letters.textscan import (
    NumberMention,
    Token,
    find_dates,
    find_numbers,
    find_phrase,
    tokenize,
    transcript_span,
    word_char_offsets,
)
from clarke_desktop.schemas import Discrepancy, LabResult, Medication, PatientContext, Transcript

_SENTENCE_END = {".", "?", "!"}
_PLAN_CUES = frozenset(
    [
        "start",
        "starting",
        "started",
        "increase",
        "increasing",
        "reduce",
        "reducing",
        "decrease",
        "switch",
        "switching",
        "change",
        "changing",
        "titrate",
        "add",
        "adding",
        "prescribe",
        "prescribing",
        "commence",
        "try",
        "trying",
        "up",
        "going",
        "new",
        "instead",
    ]
)
_TAKING_CUES = frozenset(["taking", "take", "takes", "using", "use", "on", "been"])
_STOPPED_PHRASES = (
    "stopped taking",
    "stopped the",
    "not taking",
    "stopped",
    "ran out of",
    "haven't been taking",
    "not been taking",
)
_ALLERGY_CUES = (
    "allergic to",
    "allergy to",
    "allergies to",
    "reaction to",
    "reacted to",
    "intolerant to",
    "intolerant of",
)
_ALLERGY_DENIALS = (
    "no allergies",
    "no known allergies",
    "no drug allergies",
    "no known drug allergies",
    "nkda",
    "not allergic to anything",
    "no allergy",
    "don't have any allergies",
    "not allergic to any",
)
_FREQUENCIES: tuple[tuple[str, Decimal], ...] = tuple(
    sorted(
        [
            ("four times a day", Decimal(4)), ("four times daily", Decimal(4)), ("qds", Decimal(4)), ("qid", Decimal(4)),
            ("three times a day", Decimal(3)), ("three times daily", Decimal(3)), ("tds", Decimal(3)), ("tid", Decimal(3)),
            ("twice a day", Decimal(2)), ("twice daily", Decimal(2)), ("two times a day", Decimal(2)), ("bd", Decimal(2)),
            ("bid", Decimal(2)), ("morning and evening", Decimal(2)), ("morning and night", Decimal(2)),
            ("once a day", Decimal(1)), ("once daily", Decimal(1)), ("od", Decimal(1)), ("every day", Decimal(1)),
            ("each day", Decimal(1)), ("daily", Decimal(1)), ("every morning", Decimal(1)), ("every night", Decimal(1)),
            ("at night", Decimal(1)), ("nightly", Decimal(1)), ("on", Decimal(1)), ("mane", Decimal(1)), ("nocte", Decimal(1)),
            ("once a week", Decimal(1) / 7), ("once weekly", Decimal(1) / 7), ("weekly", Decimal(1) / 7),
        ],
        key=lambda f: -len(f[0].split()),
    )
)  # fmt: skip


@dataclass
class _Scan:
    transcript: Transcript
    tokens: list[Token]
    numbers: list[NumberMention]
    offsets: list[tuple[int, int]]
    date_tokens: set[int]

    @classmethod
    def of(cls, transcript: Transcript) -> _Scan:
        tokens = tokenize(transcript.text)
        dates = find_dates(transcript.text)
        date_tokens = {i for i, t in enumerate(tokens) if any(d.start <= t.start < d.end for d in dates)}
        return cls(transcript, tokens, find_numbers(tokens), word_char_offsets(transcript), date_tokens)

    def span(self, first: int, last: int):
        """Transcript span covering tokens first..last (inclusive)."""
        return transcript_span(self.transcript, self.tokens[first].start, self.tokens[last].end, self.offsets)

    def sentence_end(self, i: int, limit: int) -> int:
        """Index one past the last token in the same sentence, at most `limit` tokens from i."""
        j = i
        while j < len(self.tokens) and j - i < limit and self.tokens[j].lower not in _SENTENCE_END:
            j += 1
        return j

    def before(self, i: int, n: int) -> list[str]:
        j = i
        words: list[str] = []
        while j > 0 and len(words) < n:
            j -= 1
            if self.tokens[j].lower in _SENTENCE_END:
                break
            words.append(self.tokens[j].lower)
        return words

    def numbers_between(self, start: int, end: int) -> list[NumberMention]:
        found = []
        for n in self.numbers:
            if not (start <= n.token_index < end) or n.token_index in self.date_tokens:
                continue
            following = self.tokens[n.token_end].lower if n.token_end < len(self.tokens) else ""
            if following in lexicon.TIME_UNITS:
                continue  # "in 3 months", "twice a day for 2 weeks"
            found.append(n)
        return found


def _same_substance(said: str, recorded: str) -> bool:
    said, recorded = said.lower().strip(), recorded.lower().strip()
    if said == recorded or said in recorded.split() or recorded.split()[0] == said:
        return True
    if fuzz.ratio(said, recorded.split()[0]) >= 88:
        return True
    for members in lexicon.ALLERGY_CLASSES.values():
        if said in members and any(m in recorded for m in members):
            return True
    return False


def _allergy_covers(recorded: str, said: str) -> bool:
    """Whether a recorded allergy covers the substance said: the same substance, or a recorded
    class ("Penicillin") that contains it. A recorded member does not cover a sibling: "allergic to
    aspirin" is news when only ibuprofen is recorded."""
    recorded, said = recorded.lower().strip(), said.lower().strip()
    words = [t.lower for t in tokenize(recorded)]
    if said in words or said == recorded or (words and fuzz.ratio(said, words[0]) >= 88):
        return True
    for key, members in lexicon.ALLERGY_CLASSES.items():
        if said in members and any(w in {key, key + "s"} or w.rstrip("s") == key for w in words):
            return True
    return False


def _reaction_group(text: str) -> str | None:
    tokens = tokenize(text)
    for group, phrases in lexicon.REACTIONS.items():
        if any(find_phrase(tokens, phrase) for phrase in phrases):
            return group
    return None


def _drug_key(name: str) -> str:
    first = tokenize(name)
    return first[0].lower if first else name.lower()


def _number_set(value: str | None) -> set[Decimal]:
    if not value:
        return set()
    return {n.value for n in find_numbers(tokenize(value))}


def _frequency_at(tokens: list[Token], start: int, end: int) -> tuple[Decimal, int, int] | None:
    for phrase, per_day in _FREQUENCIES:
        for i, j in find_phrase(tokens[start:end], phrase):
            return per_day, start + i, start + j
    return None


def _record_frequency(med: Medication) -> Decimal | None:
    for text in (med.frequency, med.dosage_text):
        if text:
            tokens = tokenize(text)
            found = _frequency_at(tokens, 0, len(tokens))
            if found:
                return found[0]
    return None


def _record_dose(med: Medication) -> NumberMention | None:
    for text in (med.dose, med.dosage_text, med.name):
        if text:
            doses = [n for n in find_numbers(tokenize(text)) if n.unit]
            if doses:
                return doses[0]
    return None


class _Collector:
    def __init__(self) -> None:
        self.items: list[Discrepancy] = []
        self._seen: set[tuple[str, int]] = set()

    def add(self, item: Discrepancy) -> None:
        key = (item.kind, item.transcript.char_start or 0)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(item)


def _check_medications(scan: _Scan, context: PatientContext, out: _Collector) -> None:
    for med in context.medications:
        key = _drug_key(med.name)
        record_dose = _record_dose(med)
        record_freq = _record_frequency(med)
        for i, j in find_phrase(scan.tokens, key):
            before = scan.before(i, 4)
            end = scan.sentence_end(j, 10)
            window = scan.tokens[j:end]
            if any(cue in _PLAN_CUES for cue in before) or any(t.lower in _PLAN_CUES for t in window):
                continue  # a planned change, not a statement of the current prescription
            said_stop = any(" ".join(reversed(before)).endswith(p) for p in _STOPPED_PHRASES)
            if said_stop:
                out.add(
                    Discrepancy(
                        id=f"medication-{scan.tokens[i].start}",
                        kind="medication",
                        description=f"Said the patient is not taking {med.name}; the record lists it as {med.status or 'active'}.",
                        transcript=scan.span(max(0, i - len(before)), j - 1),
                        record_text=_med_text(med),
                        record_source=med.source,
                        severity="medium",
                    )
                )
                continue
            doses = [n for n in scan.numbers_between(j, end) if n.unit in {"mg", "g", "mcg"}]
            if doses and record_dose and record_dose.in_mg() is not None:
                said = doses[0]
                if said.in_mg() != record_dose.in_mg():
                    out.add(
                        Discrepancy(
                            id=f"dose-{scan.tokens[i].start}",
                            kind="dose",
                            description=(
                                f"{med.name}: dose said {scan.transcript.text[said.start : said.end]}; "
                                f"prescribed {med.dose or record_dose.value}."
                            ),
                            transcript=scan.span(i, said.token_end - 1),
                            record_text=_med_text(med),
                            record_source=med.source,
                            severity="high",
                        )
                    )
                    continue
            said_freq = _frequency_at(scan.tokens, j, end)
            if said_freq and record_freq is not None and said_freq[0] != record_freq:
                out.add(
                    Discrepancy(
                        id=f"dose-{scan.tokens[i].start}",
                        kind="dose",
                        description=(
                            f"{med.name}: frequency said "
                            f"'{scan.transcript.text[scan.tokens[said_freq[1]].start : scan.tokens[said_freq[2] - 1].end]}'; "
                            f"prescribed {med.frequency or med.dosage_text}."
                        ),
                        transcript=scan.span(i, said_freq[2] - 1),
                        record_text=_med_text(med),
                        record_source=med.source,
                        severity="medium",
                    )
                )


def _med_text(med: Medication) -> str:
    from clarke_desktop.agent.context import medication_line

    return medication_line(med)


def _check_unrecorded_medicines(scan: _Scan, context: PatientContext, out: _Collector) -> None:
    recorded = [_drug_key(m.name) for m in context.medications]
    for i, token in enumerate(scan.tokens):
        if token.lower not in lexicon.DRUGS or any(_same_substance(token.lower, r) for r in recorded):
            continue
        before = scan.before(i, 3)
        if not before or before[0] not in _TAKING_CUES and before[-1] not in _TAKING_CUES:
            continue
        if any(w in _PLAN_CUES or w in lexicon.NEGATIONS for w in before):
            continue
        if any(w in {"allergic", "allergy", "reaction"} for w in scan.before(i, 4)):
            continue
        out.add(
            Discrepancy(
                id=f"medication-{token.start}",
                kind="medication",
                description=f"The patient appears to take {token.text}, which is not on the medication record.",
                transcript=scan.span(i - len(before), i),
                record_text="Current medications: "
                + (", ".join(m.name for m in context.medications) or "none recorded"),
                severity="medium",
            )
        )


def _allergen_after(scan: _Scan, start: int, extra: Iterable[str]) -> tuple[int, str] | None:
    known = lexicon.ALLERGENS | lexicon.DRUGS | set(extra)
    for k in range(start, min(start + 3, len(scan.tokens))):
        if scan.tokens[k].lower in _SENTENCE_END:
            break
        if scan.tokens[k].lower in known:
            return k, scan.tokens[k].text
    return None


def records_no_allergy(substance: str) -> bool:
    """A recorded "No known drug allergy" (SNOMED 409137002 etc.) is a statement, not an allergen."""
    text = substance.lower()
    return "no known" in text or text in {"nkda", "nka", "no allergies"}


def _check_allergies(scan: _Scan, context: PatientContext, out: _Collector) -> None:
    recorded = [a for a in context.allergies if not records_no_allergy(a.substance)]
    recorded_words = {w.lower for a in recorded for w in tokenize(a.substance)}
    record_text = "Recorded allergies: " + (
        ", ".join(a.substance for a in context.allergies) or "none recorded"
    )
    cue_tokens: set[int] = set()
    for cue in _ALLERGY_CUES:
        for i, j in find_phrase(scan.tokens, cue):
            found = _allergen_after(scan, j, recorded_words)
            if not found:
                continue
            k, substance = found
            cue_tokens.add(k)
            negated = any(w in lexicon.NEGATIONS for w in scan.before(i, 3))
            match = next((a for a in recorded if _allergy_covers(a.substance, substance)), None)
            if negated and match:
                out.add(
                    Discrepancy(
                        id=f"allergy-{scan.tokens[i].start}",
                        kind="allergy",
                        description=f"Said not allergic to {substance}; the record has an allergy to {match.substance}.",
                        transcript=scan.span(max(0, i - 3), k),
                        record_text=record_text,
                        record_source=match.source,
                        severity="high",
                    )
                )
            elif not negated and not match:
                out.add(
                    Discrepancy(
                        id=f"allergy-{scan.tokens[i].start}",
                        kind="allergy",
                        description=f"Allergy to {substance} mentioned; it is not on the allergy record.",
                        transcript=scan.span(i, k),
                        record_text=record_text,
                        record_source=recorded[0].source if recorded else None,
                        severity="high",
                    )
                )
            elif match and match.reaction:
                _check_reaction(scan, i, k, substance, match, record_text, out)
    if recorded:
        for denial in _ALLERGY_DENIALS:
            for i, j in find_phrase(scan.tokens, denial):
                out.add(
                    Discrepancy(
                        id=f"allergy-{scan.tokens[i].start}",
                        kind="allergy",
                        description="Allergies denied in the consultation; the record has "
                        + ", ".join(a.substance for a in recorded)
                        + ".",
                        transcript=scan.span(i, j - 1),
                        record_text=record_text,
                        record_source=recorded[0].source,
                        severity="high",
                    )
                )
    # A medicine being started or taken that belongs to a recorded allergy's class.
    for i, token in enumerate(scan.tokens):
        if i in cue_tokens or token.lower not in lexicon.DRUGS:
            continue
        match = next((a for a in recorded if _same_substance(token.lower, a.substance)), None)
        before = scan.before(i, 4)
        if match and any(w in _PLAN_CUES or w in _TAKING_CUES or w == "course" for w in before):
            if any(
                w in {"allergic", "allergy", "reaction", "avoid"} or w in lexicon.NEGATIONS for w in before
            ):
                continue
            out.add(
                Discrepancy(
                    id=f"allergy-{token.start}",
                    kind="allergy",
                    description=f"{token.text} discussed as a treatment; the record has an allergy to {match.substance}.",
                    transcript=scan.span(i - len(before), i),
                    record_text=record_text,
                    record_source=match.source,
                    severity="high",
                )
            )


def _check_reaction(
    scan: _Scan, i: int, k: int, substance: str, match, record_text: str, out: _Collector
) -> None:
    """A recorded allergy mentioned with a different reaction ("rash" said, anaphylaxis recorded)."""
    recorded_group = _reaction_group(match.reaction or "")
    if recorded_group is None:
        return
    end = min(len(scan.tokens), k + 14)  # the same or the next short sentence
    window = scan.tokens[k + 1 : end]
    for group, phrases in lexicon.REACTIONS.items():
        for phrase in phrases:
            hits = find_phrase(window, phrase)
            if hits and group != recorded_group:
                last = k + 1 + hits[0][1] - 1
                said = scan.transcript.text[scan.tokens[k + 1 + hits[0][0]].start : scan.tokens[last].end]
                out.add(
                    Discrepancy(
                        id=f"allergy-{scan.tokens[i].start}",
                        kind="allergy",
                        description=(
                            f"{substance} allergy: reaction said '{said}'; the record has {match.reaction}"
                            + (f" ({match.severity})" if match.severity else "")
                            + "."
                        ),
                        transcript=scan.span(i, last),
                        record_text=record_text,
                        record_source=match.source,
                        severity="high",
                    )
                )
                return
            if hits:
                return


def _lab_phrases(lab: LabResult) -> list[str]:
    name = lab.name.lower()
    best: tuple[int, tuple[str, ...]] | None = None
    for key, aliases in lexicon.LAB_ALIASES.items():
        hits = [len(a) for a in (key, *aliases) if len(a) > 2 and a in name or a == name]
        if hits and (best is None or max(hits) > best[0]):
            best = (max(hits), (key, *aliases))
    phrases = list(best[1]) if best else []
    if len(lab.name.split()) <= 3:
        phrases.append(lab.name)
    return list(dict.fromkeys(phrases))


def _lab_mentions(scan: _Scan, context: PatientContext) -> list[tuple[int, int, LabResult]]:
    """(first token, one past last, lab) for each mention; overlapping mentions keep the longest."""
    mentions = [
        (i, j, lab)
        for lab in [*context.recent_labs, *context.vital_signs]
        for phrase in _lab_phrases(lab)
        for i, j in find_phrase(scan.tokens, phrase)
    ]
    mentions.sort(key=lambda m: (m[0], -(m[1] - m[0])))
    kept: list[tuple[int, int, LabResult]] = []
    for mention in mentions:
        if not kept or mention[0] >= kept[-1][1]:
            kept.append(mention)
    return kept


def _check_labs(scan: _Scan, context: PatientContext, out: _Collector) -> None:
    mentions = _lab_mentions(scan, context)
    for index, (i, j, lab) in enumerate(mentions):
        end = scan.sentence_end(j, 12)
        if index + 1 < len(mentions):
            end = min(end, mentions[index + 1][0])  # numbers after the next test's name are its own
        recorded = _number_set(lab.value) | _number_set(lab.previous_value)
        if not recorded:
            continue
        recorded |= _number_set(lab.reference_range)  # "your best should be around 450" (predicted)
        if lab in context.vital_signs and any(t.lower in {"today", "now"} for t in scan.tokens[j:end]):
            continue  # a reading taken in this consultation: new, not a statement about the record
        lab_unit = _canonical_unit(lab.unit)
        for said in scan.numbers_between(j, end):
            if said.unit and lab_unit and said.unit != lab_unit:
                continue  # another unit system (e.g. HbA1c in %): not comparable here
            if said.unit in {"mg", "g", "mcg", "units", "tablets", "puffs"} or said.value in recorded:
                continue
            unit = f" {lab.unit}" if lab.unit else ""
            out.add(
                Discrepancy(
                    id=f"lab_value-{scan.tokens[i].start}",
                    kind="lab_value",
                    description=(
                        f"{lab.name}: value said {scan.transcript.text[said.start : said.end]}; "
                        f"recorded {lab.value}{unit} on {uk_date(lab.date)}"
                        + (f" (previously {lab.previous_value})" if lab.previous_value else "")
                        + "."
                    ),
                    transcript=scan.span(i, said.token_end - 1),
                    record_text=f"{lab.name} {lab.value}{unit} ({uk_date(lab.date)})",
                    record_source=lab.source,
                    severity="high",
                )
            )
            break


def _canonical_unit(unit: str | None) -> str | None:
    if not unit:
        return None
    found = find_numbers(tokenize(f"1 {unit}"))
    return found[0].unit if found else None


def _check_diagnoses(scan: _Scan, context: PatientContext, out: _Collector) -> None:
    problems = [p.name.lower() for p in context.problem_list]
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
            hits = find_phrase(scan.tokens, phrase)
            hit = next(
                (
                    (i, j)
                    for i, j in hits
                    if not any(w in lexicon.NEGATIONS or w in lexicon.FAMILY for w in scan.before(i, 6))
                ),
                None,
            )
            if hit:
                i, j = hit
                out.add(
                    Discrepancy(
                        id=f"diagnosis-{scan.tokens[i].start}",
                        kind="diagnosis",
                        description=f"{scan.transcript.text[scan.tokens[i].start : scan.tokens[j - 1].end]} was discussed; it is not on the problem list.",
                        transcript=scan.span(i, j - 1),
                        record_text="Problem list: "
                        + (", ".join(p.name for p in context.problem_list) or "empty"),
                        severity="medium",
                    )
                )
                break


def detect_discrepancies(transcript: Transcript | str, context: PatientContext) -> list[Discrepancy]:
    """All discrepancies between the consultation and the record, in transcript order."""
    if isinstance(transcript, str):
        transcript = Transcript(text=transcript, origin="typed")
    scan = _Scan.of(transcript)
    out = _Collector()
    _check_medications(scan, context, out)
    _check_unrecorded_medicines(scan, context, out)
    _check_allergies(scan, context, out)
    _check_labs(scan, context, out)
    _check_diagnoses(scan, context, out)
    return sorted(out.items, key=lambda d: d.transcript.char_start or 0)
