"""One reader of clinical language, used by the fact check, the discrepancy rules and the ASR
correction: what a text says, as facts with their code-point offsets and their bindings.

Clause-level binding: a dose, route and frequency belong to the drug they are said with (the
nearest drug before them in the same sentence, or "500 mg of metformin" after); a value and a date
belong to the test they are said with. In a dialogue (`dialogue=True`) an answer in the next
sentence still binds ("What dose of metformin?" "Five hundred milligrams."), as long as no other
drug or test was named in between.

Not facts: list numbering ("1."), numbers inside names ("type 2", "stage 3a", "GAD-7"), clock times
("10:30", "3pm").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from clarke_desktop.clinical_text import vocabulary
from clarke_desktop.clinical_text.context import NEGATION, Status, preceding, status_of
from clarke_desktop.clinical_text.dates import find_dates
from clarke_desktop.clinical_text.frequency import FIRST_WORDS, Duration, Frequency, duration_at, frequency_at
from clarke_desktop.clinical_text.labs import TESTS, may_start_test, test_at
from clarke_desktop.clinical_text.lexicon import EVENTS, NON_DRUG_ALLERGENS
from clarke_desktop.clinical_text.numbers import may_start_number, parse_number
from clarke_desktop.clinical_text.tokens import SENTENCE_END, Token, sentence_index, tokenize
from clarke_desktop.clinical_text.units import DOSE_UNITS, unit_at

_NAME_NUMBER_WORDS = frozenset({"type", "stage", "grade", "class", "step", "phase", "level", "tier", "covid",
                                "nyha", "ckd", "gold", "mrc", "cin", "t", "n", "m", "g", "vitamin", "factor",
                                "para", "gravida", "trisomy", "cranial", "c", "l", "s", "d", "t1", "t2",
                                "number", "no", "page", "room", "bed", "ward", "question", "item",
                                "section"})  # fmt: skip
_CLOCK_WORDS = frozenset({"am", "pm", "a.m", "p.m", "o'clock", "oclock"})
_ROUTES = {"oral": "oral", "orally": "oral", "po": "oral", "mouth": "oral", "iv": "intravenous",
           "intravenous": "intravenous", "intravenously": "intravenous", "im": "intramuscular",
           "intramuscular": "intramuscular", "sc": "subcutaneous", "subcut": "subcutaneous",
           "subcutaneous": "subcutaneous", "inhaled": "inhaled", "topical": "topical", "topically": "topical",
           "pr": "rectal", "rectal": "rectal", "sublingual": "sublingual", "sl": "sublingual",
           "nebulised": "nebulised", "transdermal": "transdermal"}  # fmt: skip
_VALUE_REACH = 5  # tokens between a test's name and its value in written text
_DIALOGUE_REACH = 40  # tokens an answer may sit after the question that named the drug or test


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    unit: str | None
    ti: int
    tj: int
    over: Decimal | None = None  # "117/56", "one seventeen over fifty six"

    @property
    def is_dose(self) -> bool:
        return self.unit in DOSE_UNITS

    def written(self) -> str:
        """As a letter writes it: "10 mg", "117/56", "7.2" (a spoken "ten milligrams" in digits)."""
        number = _plain(self.value) + (f"/{_plain(self.over)}" if self.over is not None else "")
        return f"{number} {self.unit}" if self.unit else number


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 10, 2.5, 0.25."""
    return format(value.normalize(), "f")


@dataclass(slots=True)
class DrugMention:
    canonical: str
    ti: int
    tj: int
    status: Status
    doses: list[Quantity] = field(default_factory=list)
    frequencies: list[Frequency] = field(default_factory=list)
    route: str | None = None
    is_class: bool = False  # "ACE inhibitors", "penicillin" said as a class


@dataclass(slots=True)
class TestMention:
    test: str
    ti: int
    tj: int
    status: Status
    values: list[Quantity] = field(default_factory=list)


@dataclass(slots=True)
class DateSpan:
    iso: str
    ti: int
    tj: int
    event: str | None = None  # what it is the date of: an event group, a test, or "medicine"

    def same_event(self, other: str | None) -> bool:
        """Unknown events agree with anything; known ones must be the same (a test is "bloods")."""
        a, b = self.event, other
        if a is None or b is None or a == b:
            return True
        return {a, b} <= (set(TESTS) | {"bloods"}) and "bloods" in {a, b}


@dataclass(slots=True)
class Reading:
    text: str
    tokens: list[Token]
    words: list[str]
    sentence: list[int]
    dates: list[DateSpan] = field(default_factory=list)
    durations: list[Duration] = field(default_factory=list)
    frequencies: list[Frequency] = field(default_factory=list)
    quantities: list[Quantity] = field(default_factory=list)
    drugs: list[DrugMention] = field(default_factory=list)  # drugs and drug classes
    tests: list[TestMention] = field(default_factory=list)
    allergens: list[tuple[int, int, Status]] = field(default_factory=list)  # non-drug allergens (latex)

    def span(self, ti: int, tj: int) -> tuple[int, int]:
        """Char offsets of tokens [ti, tj)."""
        return self.tokens[ti].start, self.tokens[tj - 1].end

    def snippet(self, ti: int, tj: int) -> str:
        start, end = self.span(ti, tj)
        return self.text[start:end]


def read(
    text: str,
    *,
    dialogue: bool = False,
    locale: str = "GB",
    extra_tests: dict[tuple[str, ...], str] | None = None,
) -> Reading:
    """Read `text`: its dates, durations, frequencies, quantities, drugs and tests, bound together.
    The last few readings are kept: the fact check and the discrepancy rules read the same transcript.
    A Reading is not to be changed by its users."""
    if extra_tests:
        return _read(text, dialogue, locale, extra_tests)
    return _read_cached(text, dialogue, locale)


@lru_cache(maxsize=8)
def _read_cached(text: str, dialogue: bool, locale: str) -> Reading:
    return _read(text, dialogue, locale, None)


def _read(text: str, dialogue: bool, locale: str, extra_tests: dict[tuple[str, ...], str] | None) -> Reading:
    tokens = tokenize(text)
    words = [t.lower for t in tokens]
    reading = Reading(text, tokens, words, sentence_index(tokens))
    taken = [False] * len(tokens)

    def take(ti: int, tj: int) -> None:
        for k in range(ti, tj):
            taken[k] = True

    _read_dates(reading, locale, take)
    _mark_non_facts(reading, taken)
    i = 0
    while i < len(tokens):
        if taken[i] or not (may_start_test(words[i]) or extra_tests or vocabulary.may_start_name(words[i])):
            i += 1
            continue
        found = test_at(words, i, extra_tests)
        after_number = i > 0 and tokens[i - 1].is_number  # "1 hr", "5 sats": a unit, not a test
        if found and _name_boundary(tokens, i, found[1]) and not after_number:
            reading.tests.append(TestMention(found[0], i, found[1], status_of(words, i, found[1])))
            take(i, found[1])
            i = found[1]
            continue
        cls = vocabulary.longest_class_at(words, i)
        drug = vocabulary.longest_drug_at(words, i)
        if cls and (drug is None or cls[1] >= drug[1]) and _class_said(words, i, cls[1], drug):
            reading.drugs.append(DrugMention(cls[0], i, cls[1], status_of(words, i, cls[1]), is_class=True))
            take(i, cls[1])
            i = cls[1]
            continue
        if drug:
            reading.drugs.append(DrugMention(drug[0], i, drug[1], status_of(words, i, drug[1])))
            take(i, drug[1])
            i = drug[1]
            continue
        i += 1
    i = 0
    while i < len(tokens):
        if taken[i] or not (
            words[i] in FIRST_WORDS or words[i] in {"twice", "thrice"} or may_start_number(tokens[i])
        ):
            i += 1
            continue
        freq = frequency_at(words, tokens, i)
        if (
            freq
            and freq.tj - freq.ti == 1
            and tokens[i].text in {"od", "on", "om"}
            and (i == 0 or (tokens[i - 1].is_word and unit_at(words, i - 1) is None))
        ):
            freq = None  # lower-case "od"/"on" after a word is a typo or a preposition ("loss od appetite")
        span = _amount_at(reading, i, taken, freq)
        if span is None:
            i += 1
            continue
        if isinstance(span, Frequency):
            reading.frequencies.append(span)
        elif isinstance(span, Duration):
            reading.durations.append(span)
        else:
            reading.quantities.append(span)
        take(span.ti, span.tj)
        i = span.tj
    _read_allergens(reading, taken)
    _allergy_headings(reading)
    _share_list_status(reading)
    _bind(reading, dialogue)
    _date_events(reading)
    return reading


_ALLERGY_HEADINGS = frozenset(
    {
        "allergies",
        "allergy",
        "drug allergies",
        "allergies and intolerances",
        "allergies / intolerances",
        "allergies/intolerances",
        "allergy status",
    }
)


def _allergy_headings(reading: Reading) -> None:
    """A drug on the lines under an "Allergies" heading is an allergy ("Allergies\nPenicillin (rash).")."""
    text = reading.text
    under: tuple[int, int] | None = None  # char range of the block under the heading
    start = 0
    blocks: list[tuple[int, int]] = []
    for line in text.splitlines(keepends=True):
        stripped = line.strip().rstrip(":").strip().lower()
        end = start + len(line)
        if stripped in _ALLERGY_HEADINGS:
            under = (end, end)
        elif under is not None:
            if not stripped:
                blocks.append(under)
                under = None
            else:
                under = (under[0], end)
        start = end
    if under is not None:
        blocks.append(under)
    for d in reading.drugs:
        begin = reading.tokens[d.ti].start
        if d.status is Status.CURRENT and any(a <= begin < b for a, b in blocks):
            d.status = Status.ALLERGY


def _share_list_status(reading: Reading) -> None:
    """ "Start budesonide with formoterol", "allergic to penicillin and codeine": a drug joined to the
    one before it by "and"/"with"/"or"/"," shares that drug's status when it has no cue of its own."""
    for before, after in zip(reading.drugs, reading.drugs[1:], strict=False):
        gap = reading.words[before.tj : after.ti]
        if (
            after.status is Status.CURRENT
            and before.status is not Status.CURRENT
            and gap
            and len(gap) <= 3
            and all(w in {"and", "with", "or", ",", "plus", "/", "the", "a"} for w in gap)
        ):
            after.status = before.status


def _amount_at(
    reading: Reading, i: int, taken: list[bool], freq: Frequency | None
) -> Frequency | Duration | Quantity | None:
    """The first of a frequency, a duration or a quantity that starts at token i and overlaps
    nothing read already."""
    if freq is not None and not any(taken[freq.ti : freq.tj]):
        return freq
    duration = duration_at(reading.words, reading.tokens, i)
    if duration is not None and not any(taken[duration.ti : duration.tj]):
        return duration
    return _quantity_at(reading, i, taken)


def _name_boundary(tokens: list[Token], i: int, j: int) -> bool:
    """A name must not run into a hyphen or digits ("hb-" in "hb-related" is no test)."""
    return not (j < len(tokens) and tokens[j].start == tokens[j - 1].end and tokens[j].text in {"-", "/"})


def _class_said(words: list[str], i: int, j: int, drug: tuple[str, int] | None) -> bool:
    """'penicillin' names the class in allergy talk and the drug otherwise."""
    if drug is None or drug[1] < j:
        return True
    return status_of(words, i, j) is Status.ALLERGY


def _read_dates(reading: Reading, locale: str, take: Callable[[int, int], None]) -> None:
    starts = {t.start: k for k, t in enumerate(reading.tokens)}
    ends = {t.end: k for k, t in enumerate(reading.tokens)}
    for d in find_dates(reading.text, locale=locale):
        if d.start in starts and d.end in ends:
            ti, tj = starts[d.start], ends[d.end] + 1
            reading.dates.append(DateSpan(d.iso, ti, tj))
            take(ti, tj)


def _mark_non_facts(reading: Reading, taken: list[bool]) -> None:
    tokens, words = reading.tokens, reading.words
    text = reading.text
    for k, t in enumerate(tokens):
        if not t.is_number:
            continue
        line_start = text.rfind("\n", 0, t.start) + 1
        at_line_start = not text[line_start : t.start].strip(" \t-*•")
        nxt = words[k + 1] if k + 1 < len(words) else ""
        line_before = text[line_start : t.start]
        if (at_line_start and nxt in {".", ")"} and len(t.text) <= 2) or (
            nxt == ")" and "(" not in line_before
        ):
            taken[k] = True  # list numbering: "1." / "2)" / "Plan - 1) ibuprofen"
        elif (
            k + 1 < len(tokens) and tokens[k + 1].start == t.end and words[k + 1] in {"st", "nd", "rd", "th"}
        ):
            taken[k] = taken[k + 1] = True  # ordinals: "1st presentation"
        elif (
            k > 1
            and words[k - 1] == "/"
            and any(ch.isdigit() for ch in words[k - 2])
            and tokens[k - 2].is_word
        ):
            taken[k] = True  # "T3/4"
        elif k > 0 and words[k - 1] in _NAME_NUMBER_WORDS:
            taken[k] = True  # "type 2", "stage 3", "grade 2"
            if k + 1 < len(tokens) and len(tokens[k + 1].text) == 1 and tokens[k + 1].start == t.end:
                taken[k + 1] = True  # "stage 3a"
        elif nxt == ":" and k + 2 < len(tokens) and tokens[k + 2].is_number and len(tokens[k + 2].text) == 2:
            taken[k] = taken[k + 1] = taken[k + 2] = True  # 10:30
        elif nxt in _CLOCK_WORDS or (nxt == "." and k + 2 < len(words) and words[k + 2] in {"am", "pm"}):
            taken[k] = True
        elif "." in t.text and k + 1 < len(words) and words[k + 1] in _CLOCK_WORDS:
            taken[k] = True  # 10.30am
    # spoken clock times: "half past three", "at ten o'clock" are caught above; "half past" here
    for k in range(len(words) - 2):
        if words[k] in {"half", "quarter"} and words[k + 1] in {"past", "to"}:
            number = parse_number(tokens, k + 2)
            if number:
                for m in range(k, number.end):
                    taken[m] = True


def _quantity_at(reading: Reading, i: int, taken: list[bool]) -> Quantity | None:
    tokens, words = reading.tokens, reading.words
    if words[i] in {"twice", "thrice"}:  # "vomited twice" (a frequency phrase was read before this)
        return Quantity(Decimal(2 if words[i] == "twice" else 3), None, i, i + 1)
    if (
        words[i] == "x"
        and i + 1 < len(tokens)
        and tokens[i + 1].is_number
        and tokens[i + 1].start == tokens[i].end
    ):
        value = parse_number(tokens, i + 1)  # "vomited x2"
        if value is not None and not taken[i + 1]:
            return Quantity(value.value, None, i, value.end)
    number = parse_number(tokens, i)
    if number is None or any(taken[i : number.end]):
        return None
    # "one" is a pronoun as often as a number: only with a unit after it
    if (
        number.spoken
        and words[i] in {"one", "a"}
        and number.end == i + 1
        and unit_at(words, number.end) is None
    ):
        return None
    j = number.end
    over: Decimal | None = None
    if j + 1 < len(words) and words[j] in {"over", "/"} and not taken[j + 1]:
        second = parse_number(tokens, j + 1)
        if second is not None and not any(taken[j + 1 : second.end]):
            over, j = second.value, second.end
    elif j + 2 < len(words) and words[j] == "out" and words[j + 1] == "of":  # "six out of ten"
        second = parse_number(tokens, j + 2)
        if second is not None and not any(taken[j + 2 : second.end]):
            over, j = second.value, second.end
    unit = unit_at(words, j)
    if unit and not any(taken[j : unit[1]]):
        return Quantity(number.value, unit[0], i, unit[1], over)
    return Quantity(number.value, None, i, j, over)


def _read_allergens(reading: Reading, taken: list[bool]) -> None:
    """Non-drug allergens after an allergy cue ("allergic to latex", "allergy to nuts")."""
    words = reading.words
    for k in range(len(words) - 2):
        if words[k] in {"allergic", "allergy", "allergies", "intolerant"} and words[k + 1] in {"to", "of"}:
            m = k + 2
            if words[m] in {"the", "a", "any"}:
                m += 1
            if m < len(words) and words[m] in NON_DRUG_ALLERGENS and not taken[m]:
                negated = any(w in NEGATION for w in preceding(words, k, 4))
                reading.allergens.append((m, m + 1, Status.NEGATED if negated else Status.ALLERGY))


def _bind(reading: Reading, dialogue: bool) -> None:
    """Give each dose, route and frequency its drug, and each value its test."""
    anchors: list[tuple[int, str, DrugMention | TestMention]] = sorted(
        [(d.ti, "drug", d) for d in reading.drugs if not d.is_class]
        + [(t.ti, "test", t) for t in reading.tests],
        key=lambda a: a[0],
    )
    words, sentence = reading.words, reading.sentence

    def owner(ti: int, tj: int, want: str) -> DrugMention | TestMention | None:
        """The drug or test a quantity at tokens [ti, tj) belongs to: the nearer of the one before it
        and the one right after it ("and 1.5 g paracetamol", "two puffs of salbutamol"); the one
        before wins a tie ("metformin 500 mg paracetamol 1 g")."""
        before = [a for a in anchors if a[0] < ti]
        after = [a for a in anchors if a[0] >= tj]
        back: DrugMention | TestMention | None = None
        if before:
            at, kind, mention = before[-1]
            same = sentence[at] == sentence[ti] and not any(
                w in {";", "(", ")"} for w in words[mention.tj : ti]
            )
            if kind == "test" and not dialogue and ti - mention.tj > _VALUE_REACH:
                same = False  # "temperature (not measured), 2 episodes": too far to be its value
            near = dialogue and ti - mention.tj <= _DIALOGUE_REACH
            if kind == want and (same or near):
                back = mention
        if after:
            at, kind, mention = after[0]
            gap = words[tj:at]
            if (
                kind == want
                and sentence[at] == sentence[ti]
                and len(gap) <= 2
                and all(w in {"of", "the"} for w in gap)
            ):
                # a comma between the drug before and the quantity weakens that link
                back_gap = (
                    ti - back.tj + (2 if back is not None and "," in words[back.tj : ti] else 0)
                    if back
                    else 0
                )
                if back is None or len(gap) < back_gap:
                    return mention
            # dialogue: "I use it only when I need it." "Is that the blue inhaler?"
            near_before = bool(before) and ti - before[-1][2].tj <= _DIALOGUE_REACH
            if (
                back is None
                and kind == want
                and dialogue
                and not near_before
                and at - ti <= _DIALOGUE_REACH // 2
            ):
                return mention
        return back

    drug_ends = {d.tj: d for d in reading.drugs if not d.is_class}
    for q in reading.quantities:
        if q.unit is None and q.over is None and q.ti in drug_ends:
            drug_ends[q.ti].doses.append(q)  # "atorvastatin forty", "metformin 500": a dose without its unit
            continue
        if q.is_dose:
            drug = owner(q.ti, q.tj, "drug")
            if isinstance(drug, DrugMention):
                drug.doses.append(q)
        else:
            test = owner(q.ti, q.tj, "test")
            if isinstance(test, TestMention):
                test.values.append(q)
    for f in reading.frequencies:
        drug = owner(f.ti, f.tj, "drug")
        if isinstance(drug, DrugMention):
            drug.frequencies.append(f)
    for d in reading.drugs:
        for w in words[d.tj : d.tj + 6]:
            if w in SENTENCE_END:
                break
            if w in _ROUTES:
                d.route = _ROUTES[w]
                break


def _date_events(reading: Reading) -> None:
    """Bind each date to the event said with it in its sentence: the nearest event word, test or
    drug before it (or after it, within a few words)."""
    words, sentence = reading.words, reading.sentence
    marks: dict[int, str] = {k: EVENTS[w] for k, w in enumerate(words) if w in EVENTS}
    for t in reading.tests:
        marks[t.ti] = t.test
    for d in reading.drugs:
        marks.setdefault(d.ti, "medicine")
    for date in reading.dates:
        before = [
            k for k in range(max(0, date.ti - 10), date.ti) if k in marks and sentence[k] == sentence[date.ti]
        ]
        after = [
            k
            for k in range(date.tj, min(len(words), date.tj + 4))
            if k in marks and sentence[k] == sentence[date.ti]
        ]
        if before:
            date.event = marks[before[-1]]
        elif after:
            date.event = marks[after[0]]


def bound_quantities(reading: Reading) -> set[int]:
    """Token indexes of quantities bound to a drug or a test."""
    out: set[int] = set()
    for d in reading.drugs:
        out.update(q.ti for q in d.doses)
    for t in reading.tests:
        out.update(q.ti for q in t.values)
    return out
