"""How often (od, bd, tds, qds, prn, "twice daily", "every 6 hours", US bid/tid/qid) and for how long
(UK shorthand "3/7", "2/52", "6/12"; "for two weeks", "a fortnight").

Every frequency is reduced to doses per day, so "bd", "twice a day" and "every 12 hours" agree; "as
required" has no per-day figure and only matches another "as required".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from clarke_desktop.clinical_text.numbers import parse_number
from clarke_desktop.clinical_text.tokens import Token, tokenize

PRN = "as required"
_FIXED: dict[tuple[str, ...], Decimal | None] = {}


def _add(per_day: Decimal | None, *phrases: str) -> None:
    for phrase in phrases:
        _FIXED[tuple(t.lower for t in tokenize(phrase))] = per_day


_add(
    Decimal(1),
    "od",
    "o.d.",
    "mane",
    "nocte",
    "once a day",
    "once daily",
    "once per day",
    "daily",
    "every day",
    "each day",
    "every morning",
    "every night",
    "each morning",
    "each night",
    "at night",
    "in the morning",
    "at bedtime",
    "nightly",
    "once in the morning",
    "once at night",
    "qd",
    "one a day",
    "one daily",
    "once a night",
    "every evening",
    "in the evening",
    "qhs",
)
_add(
    Decimal(2),
    "bd",
    "b.d",
    "bid",
    "twice a day",
    "twice daily",
    "twice per day",
    "two times a day",
    "two times daily",
    "morning and night",
    "morning and evening",
    "2 times a day",
    "2x a day",
    "2x daily",
)
_add(
    Decimal(3),
    "tds",
    "t.d.s",
    "tid",
    "three times a day",
    "three times daily",
    "3 times a day",
    "thrice daily",
    "3x a day",
    "3x daily",
)
_add(
    Decimal(4),
    "qds",
    "q.d.s",
    "qid",
    "four times a day",
    "four times daily",
    "4 times a day",
    "4x a day",
    "4x daily",
)
# meal and bed times said as the time of a once-daily dose
_add(Decimal(1), "before breakfast", "with breakfast", "after breakfast", "at breakfast", "with dinner", "with tea",
     "at teatime", "before bed", "in the mornings", "at lunchtime", "with lunch")  # fmt: skip
_add(Decimal(1) / 7, "once a week", "once weekly", "weekly", "every week")
_add(Decimal(2) / 7, "twice a week", "twice weekly")
_add(Decimal(1) / 14, "fortnightly", "every two weeks", "every fortnight")
_add(Decimal(1) / 30, "monthly", "once a month", "every month")
_add(Decimal("0.5"), "alternate days", "every other day")
_add(
    None,
    "prn",
    "p.r.n",
    "as required",
    "as needed",
    "when required",
    "when needed",
    "if needed",
    "if required",
    "when i need it",
    "when i need",
    "when you need it",
    "when you need",
    "as and when",
    "when necessary",
    "as necessary",
    "only when i need",
    "if you need it",
    "if i need it",
    "on and off",
    "only when",
    "infrequently",
)
_MAX_FIXED = max(len(k) for k in _FIXED)
FIRST_WORDS = frozenset(k[0] for k in _FIXED) | {
    "every",
    "q",
    "x",
    "half",
    "a",
    "an",
    "next",
    "one",
    "couple",
}
# words after "N times" that make a per-period frequency
_PERIOD_DAYS = {"day": Decimal(1), "daily": Decimal(1), "week": Decimal(7), "weekly": Decimal(7),
                "month": Decimal(30), "hour": Decimal(1) / 24, "d": Decimal(1), "wk": Decimal(7),
                "night": Decimal(1)}  # fmt: skip
_HOURS = {"hour", "hours", "hourly", "hrs", "hr", "h"}


@dataclass(frozen=True, slots=True)
class Frequency:
    per_day: Decimal | None  # None: as required
    ti: int  # token range [ti, tj)
    tj: int
    count: Decimal | None = None  # the number said ("6" of "every 6 hours")
    upper_per_day: Decimal | None = None  # "4-5 times a day"

    def same_as(self, other: Frequency) -> bool:
        """Whether `other` (said, or recorded) supports this frequency."""
        if self.per_day is None or other.per_day is None:
            return self.per_day is other.per_day
        return _same_range(self.per_day, self.upper_per_day, other.per_day, other.upper_per_day)


def frequency_at(words: list[str], tokens: list[Token], i: int) -> Frequency | None:
    """A frequency phrase starting at token i."""
    for n in range(min(_MAX_FIXED, len(words) - i), 0, -1):
        key = tuple(words[i : i + n])
        if key in _FIXED:
            return Frequency(_FIXED[key], i, i + n)
    # "every 6 hours", "every four to six hours" (the shorter interval: the most doses), "4 hourly"
    if words[i] in {"every", "q"}:
        number = parse_number(tokens, i + 1)
        if number and number.value > 0:
            j = number.end
            if j + 1 < len(words) and words[j] in {"to", "-"}:
                later = parse_number(tokens, j + 1)
                j = later.end if later else j
            if j < len(words) and words[j] in _HOURS:
                return Frequency(Decimal(24) / number.value, i, j + 1, number.value)
            if j < len(words) and words[j] in {"days", "day"}:
                return Frequency(Decimal(1) / number.value, i, j + 1, number.value)
            if j < len(words) and words[j] in {"weeks", "week"}:
                return Frequency(Decimal(1) / (7 * number.value), i, j + 1, number.value)
    number = parse_number(tokens, i)
    if number and number.value > 0:
        j, upper = _range_end(words, tokens, number.end)
        if j < len(words) and words[j] in {"hourly", "hrly"} and upper is None:
            return Frequency(Decimal(24) / number.value, i, j + 1, number.value)
        if j < len(words) and words[j] in {"times", "x"}:
            j += 1
        if j + 1 < len(words) and words[j] in {"a", "per", "each", "/"}:
            period = _PERIOD_DAYS.get(words[j + 1].rstrip("s")) or _PERIOD_DAYS.get(words[j + 1])
            if period:
                return Frequency(
                    number.value / period, i, j + 2, number.value, upper / period if upper else None
                )
    if words[i] == "x" and i + 1 < len(words):  # "x6/day"
        number = parse_number(tokens, i + 1)
        if number and number.end + 1 < len(words) and words[number.end] in {"/", "per", "a"}:
            period = _PERIOD_DAYS.get(words[number.end + 1])
            if period:
                return Frequency(number.value / period, i, number.end + 2, number.value)
    return None


def _same_range(low: Decimal, high: Decimal | None, other_low: Decimal, other_high: Decimal | None) -> bool:
    """Whether the written (low, high) is supported by the said (other_low, other_high): a range needs
    the same range; a single value is supported by a range that has it as an end ("x6/day" written,
    "six or seven times a day" said). Not symmetric: call it on the written value."""

    def near(a: Decimal, b: Decimal) -> bool:
        return abs(a - b) < Decimal("0.01")

    if high is not None:  # a range written needs the same range said
        return other_high is not None and near(low, other_low) and near(high, other_high)
    return near(low, other_low) or (other_high is not None and near(low, other_high))


def _range_end(words: list[str], tokens: list[Token], j: int) -> tuple[int, Decimal | None]:
    """After a number: "-6" / "to six" makes a range; (index after it, the upper value or None)."""
    if j + 1 < len(words) and words[j] in {"-", "to", "or", ","}:
        upper = parse_number(tokens, j + 1)
        if upper is not None:
            return upper.end, upper.value
    return j, None


@dataclass(frozen=True, slots=True)
class Duration:
    days: Decimal
    count: Decimal  # the number said ("3" of "3/7", "two" of "two weeks")
    ti: int
    tj: int
    upper_days: Decimal | None = None  # "3-5 days", "three to four days"

    def same_as(self, other: Duration) -> bool:
        """Whether `other` (said) supports this duration."""
        return _same_range(self.days, self.upper_days, other.days, other.upper_days)


_SHORTHAND_DAYS = {"7": Decimal(1), "52": Decimal(7), "12": Decimal(30)}  # 3/7 days, 2/52 weeks, 6/12 months
_UNIT_DAYS = {"day": Decimal(1), "days": Decimal(1), "week": Decimal(7), "weeks": Decimal(7), "wk": Decimal(7),
              "wks": Decimal(7), "month": Decimal(30), "months": Decimal(30), "year": Decimal(365),
              "years": Decimal(365), "yr": Decimal(365), "yrs": Decimal(365), "fortnight": Decimal(14),
              "fortnights": Decimal(14), "hours": Decimal(1) / 24, "hour": Decimal(1) / 24,
              "hrs": Decimal(1) / 24, "minutes": Decimal(1) / 1440, "mins": Decimal(1) / 1440,
              "minute": Decimal(1) / 1440, "seconds": Decimal(1) / 86400, "mths": Decimal(30),
              "mth": Decimal(30), "mo": Decimal(30), "hr": Decimal(1) / 24, "weekends": Decimal(7)}  # fmt: skip
# one-letter units count only written onto the number ("5d", "2w")
_ATTACHED_DAYS = {"d": Decimal(1), "w": Decimal(7), "h": Decimal(1) / 24, "y": Decimal(365), "m": Decimal(30)}
_UNIT_DAYS.update(
    {f"{u}'s": d for u, d in list(_UNIT_DAYS.items()) if u in {"day", "week", "month", "year", "fortnight"}}
)
_UNIT_DAYS.update(
    {f"{u}'": d for u, d in list(_UNIT_DAYS.items()) if u in {"days", "weeks", "months", "years"}}
)
_SINGLE_UNITS = frozenset(
    {
        "fortnight",
        "week",
        "month",
        "year",
        "day",
        "hour",
        "fortnight's",
        "week's",
        "month's",
        "year's",
        "day's",
    }
)
_DURATION_LEAD = frozenset(
    {
        "for",
        "over",
        "in",
        "within",
        "past",
        "last",
        "about",
        "around",
        "than",
        "to",
        "nearly",
        "almost",
        "just",
        "only",
        "after",
        "since",
        "under",
        "least",
        "roughly",
        "approximately",
    }
)


def duration_at(words: list[str], tokens: list[Token], i: int) -> Duration | None:
    """A duration at token i: "3/7", "2/52", "6/12", "3 days", "two weeks", "a fortnight"."""
    if (
        i + 2 < len(words)
        and tokens[i].is_number
        and words[i + 1] == "/"
        and words[i + 2] in _SHORTHAND_DAYS
        and tokens[i + 1].start == tokens[i].end
        and tokens[i + 2].start == tokens[i + 1].end
        and "." not in tokens[i].text
    ):
        return Duration(
            Decimal(tokens[i].text) * _SHORTHAND_DAYS[words[i + 2]], Decimal(tokens[i].text), i, i + 3
        )
    if (
        words[i] == "half"
        and i + 2 < len(words)
        and words[i + 1] in {"an", "a"}
        and words[i + 2] in {"hour", "day"}
    ):
        return Duration(_UNIT_DAYS[words[i + 2]] / 2, Decimal("0.5"), i, i + 3)
    if words[i] in {"a", "an", "next", "one"} and i + 1 < len(words) and words[i + 1] in _SINGLE_UNITS:
        # "for a week", "a week ago", "next week"; not a rate ("1 pint a week")
        ago = i + 2 < len(words) and words[i + 2] in {"ago", "or", "later", "before", "after"}
        if words[i] == "next" or ago or (i > 0 and words[i - 1] in _DURATION_LEAD):
            return Duration(_UNIT_DAYS[words[i + 1]], Decimal(1), i, i + 2)
        if words[i + 1].endswith("'s"):  # "in a week's time"
            return Duration(_UNIT_DAYS[words[i + 1]], Decimal(1), i, i + 2)
        return None
    k = i + 1 if words[i] == "a" else i
    if k + 2 < len(words) and words[k] == "couple" and words[k + 1] == "of" and words[k + 2] in _UNIT_DAYS:
        return Duration(2 * _UNIT_DAYS[words[k + 2]], Decimal(2), i, k + 3)
    number = parse_number(tokens, i)
    if number is None:
        return None
    j, upper = _range_end(words, tokens, number.end)
    if j < len(words) and words[j] in _UNIT_DAYS:
        unit = _UNIT_DAYS[words[j]]
    elif j < len(words) and words[j] in _ATTACHED_DAYS and tokens[j].start == tokens[j - 1].end:
        unit = _ATTACHED_DAYS[words[j]]
    else:
        return None
    return Duration(number.value * unit, number.value, i, j + 1, upper * unit if upper is not None else None)
