"""Scanning clinical text: words with offsets, numbers (digits or spoken), units, dates, phrases.

Used on transcripts (ASR writes "five hundred milligrams" as often as "500 mg") and on letter
sections. Every match keeps its character offsets so it can be shown and traced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from clarke_desktop.schemas import Transcript, TranscriptSpan

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[A-Za-z][A-Za-z0-9]*(?:['\-][A-Za-z0-9]+)*|[/%.,;:?!]")


@dataclass(frozen=True)
class Token:
    text: str
    lower: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


_UNITS_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMBER_WORDS = set(_UNITS_WORDS) | set(_TENS_WORDS) | set(_SCALES) | {"point", "and"}

# canonical unit -> spoken/written forms (each a tuple of lowercase tokens)
UNITS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mmol/mol": (("mmol", "/", "mol"), ("millimoles", "per", "mole"), ("millimole", "per", "mole")),
    "mmol/L": (("mmol", "/", "l"), ("millimoles", "per", "litre"), ("mmol", "per", "litre"), ("mmol",)),
    "mL/min": (
        ("ml", "/", "min"),
        ("mls", "per", "minute"),
        ("ml", "per", "minute"),
        ("ml", "/", "min", "/", "1.73m2"),
    ),
    "L/min": (("l", "/", "min"), ("litres", "per", "minute"), ("liters", "per", "minute")),
    "umol/L": (("umol", "/", "l"), ("micromoles", "per", "litre"), ("micromol", "/", "l")),
    "ng/L": (("ng", "/", "l"), ("nanograms", "per", "litre")),
    "pg/mL": (("pg", "/", "ml"),),
    "g/L": (("g", "/", "l"), ("grams", "per", "litre")),
    "mmHg": (("mmhg",), ("millimetres", "of", "mercury"), ("mm", "hg")),
    "mg": (("mg",), ("milligrams",), ("milligram",), ("mgs",)),
    "g": (("g",), ("grams",), ("gram",), ("gm",)),
    "mcg": (("mcg",), ("micrograms",), ("microgram",), ("ug",)),
    "units": (("units",), ("unit",), ("iu",)),
    "mL": (("ml",), ("mls",), ("millilitres",), ("milliliters",)),
    "%": (("%",), ("percent",), ("per", "cent")),
    "kg": (("kg",), ("kilograms",), ("kilos",), ("kilogram",)),
    "bpm": (("bpm",), ("beats", "per", "minute")),
    "puffs": (("puffs",), ("puff",)),
    "tablets": (("tablets",), ("tablet",), ("tabs",)),
}
_UNIT_FORMS = sorted(
    ((form, canonical) for canonical, forms in UNITS.items() for form in forms), key=lambda f: -len(f[0])
)
DOSE_UNITS = frozenset({"mg", "g", "mcg", "units", "mL", "puffs", "tablets"})
_TO_MG = {"mg": Decimal(1), "g": Decimal(1000), "mcg": Decimal("0.001")}


@dataclass(frozen=True)
class NumberMention:
    value: Decimal
    unit: str | None
    start: int  # char offsets of the number and its unit
    end: int
    token_index: int  # first token
    token_end: int  # one past the last token (unit included)

    def in_mg(self) -> Decimal | None:
        return self.value * _TO_MG[self.unit] if self.unit in _TO_MG else None


def to_decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").lstrip("<>=~"))
    except InvalidOperation:
        return None


def _spoken_number(tokens: list[Token], i: int) -> tuple[Decimal, int] | None:
    """Parse 'one hundred and fifty', 'fifty-five', 'seven point five' from tokens[i]; (value, next i)."""
    words: list[str] = []
    j = i
    while j < len(tokens):
        parts = tokens[j].lower.split("-")
        if all(p in _NUMBER_WORDS for p in parts) and not (tokens[j].lower == "and" and not words):
            words.extend(parts)
            j += 1
        else:
            break
    while words and words[-1] in {"and", "point"}:
        words.pop()
        j -= 1
    if not words or all(w in {"and", "point"} for w in words):
        return None
    total, current, decimals, in_decimals = 0, 0, "", False
    for w in words:
        if w == "point":
            in_decimals = True
        elif in_decimals:
            if w not in _UNITS_WORDS or _UNITS_WORDS[w] > 9:
                return None
            decimals += str(_UNITS_WORDS[w])
        elif w in _UNITS_WORDS:
            current += _UNITS_WORDS[w]
        elif w in _TENS_WORDS:
            current += _TENS_WORDS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total += (current or 1) * 1000
            current = 0
    value = Decimal(total + current)
    if decimals:
        value += Decimal("0." + decimals)
    return value, j


def _unit_at(tokens: list[Token], i: int) -> tuple[str, int] | None:
    for form, canonical in _UNIT_FORMS:
        if tuple(t.lower for t in tokens[i : i + len(form)]) == form:
            return canonical, i + len(form)
    return None


def find_numbers(tokens: list[Token]) -> list[NumberMention]:
    mentions: list[NumberMention] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        parsed: tuple[Decimal, int] | None = None
        if token.text[0].isdigit():
            value = to_decimal(token.text)
            parsed = (value, i + 1) if value is not None else None
        elif token.lower.split("-")[0] in _NUMBER_WORDS and token.lower not in {"and", "point"}:
            parsed = _spoken_number(tokens, i)
        if parsed is None:
            i += 1
            continue
        value, j = parsed
        unit = _unit_at(tokens, j)
        end_index = unit[1] if unit else j
        mentions.append(
            NumberMention(
                value=value,
                unit=unit[0] if unit else None,
                start=token.start,
                end=tokens[end_index - 1].end,
                token_index=i,
                token_end=end_index,
            )
        )
        i = end_index
    return mentions


def find_phrase(tokens: list[Token], phrase: str) -> list[tuple[int, int]]:
    """Token index ranges [i, j) where the phrase's words occur in order (whole words, any case)."""
    words = [t.lower for t in tokenize(phrase)]
    if not words:
        return []
    hits = []
    for i in range(len(tokens) - len(words) + 1):
        if all(tokens[i + k].lower == words[k] for k in range(len(words))):
            hits.append((i, i + len(words)))
    return hits


# --- Dates ----------------------------------------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), "dmy"),
    (
        re.compile(
            r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\.?,?\s+(\d{4})\b",
        ),
        "d_month_y",
    ),
    (re.compile(r"\b([A-Za-z]{3,9})\s+(\d{4})\b"), "month_y"),
]


@dataclass(frozen=True)
class DateMention:
    iso: str  # yyyy-mm-dd or yyyy-mm
    start: int
    end: int


def find_dates(text: str) -> list[DateMention]:
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for pattern, shape in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            iso = _iso_date(m.groups(), shape)
            if iso:
                found.append(DateMention(iso, m.start(), m.end()))
                taken.append((m.start(), m.end()))
    return sorted(found, key=lambda d: d.start)


def _iso_date(groups: tuple[str, ...], shape: str) -> str | None:
    try:
        if shape == "ymd":
            y, mo, d = int(groups[0]), int(groups[1]), int(groups[2])
        elif shape == "dmy":
            d, mo, y = int(groups[0]), int(groups[1]), int(groups[2])
        elif shape == "d_month_y":
            d, mo, y = int(groups[0]), _MONTHS[groups[1].lower()], int(groups[2])
        else:
            mo, y = _MONTHS[groups[0].lower()], int(groups[1])
            return f"{y:04d}-{mo:02d}" if 1 <= mo <= 12 else None
    except (KeyError, ValueError):
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


# --- Transcript spans with times ------------------------------------------------------------


def word_char_offsets(transcript: Transcript) -> list[tuple[int, int]]:
    """Char offsets of each Transcript.words entry within Transcript.text (-1 where not found)."""
    offsets: list[tuple[int, int]] = []
    cursor = 0
    lowered = transcript.text.lower()
    for word in transcript.words:
        needle = word.text.strip().lower()
        at = lowered.find(needle, cursor) if needle else -1
        if at < 0:
            offsets.append((-1, -1))
            continue
        offsets.append((at, at + len(needle)))
        cursor = at + len(needle)
    return offsets


def transcript_span(
    transcript: Transcript, start: int, end: int, offsets: list[tuple[int, int]] | None = None
) -> TranscriptSpan:
    """The text between two char offsets, with audio times from the words that overlap it."""
    if offsets is None:
        offsets = word_char_offsets(transcript)
    overlapping = [
        word
        for word, (s, e) in zip(transcript.words, offsets, strict=True)
        if s >= 0 and s < end and e > start
    ]
    return TranscriptSpan(
        text=transcript.text[start:end],
        start_s=overlapping[0].start_s if overlapping else None,
        end_s=overlapping[-1].end_s if overlapping else None,
        char_start=start,
        char_end=end,
    )


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to the surrounding sentence (or ~80 chars either side when unpunctuated)."""
    left = max(text.rfind(ch, 0, start) for ch in ".?!\n")
    left = left + 1 if left >= 0 and start - left <= 200 else max(0, start - 80)
    rights = [i for ch in ".?!\n" if (i := text.find(ch, end)) >= 0]
    right = min(rights) + 1 if rights and min(rights) - end <= 200 else min(len(text), end + 80)
    while left < start and text[left].isspace():
        left += 1
    return left, right
