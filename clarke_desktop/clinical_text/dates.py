"""Dates, day-first by default (UK): "15/03/2024", "15th of March 2024", "March 2024", "August of
2019", "2024-03-15", "15 March" and a year after "in"/"since"/"from". `locale="US"` reads numeric
dates month-first. Results are ISO: yyyy-mm-dd, yyyy-mm, yyyy, or --mm-dd when no year was said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december"]  # fmt: skip
MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items()) if m != "may"})
MONTHS["sept"] = 9
_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d{2})"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})\b"), "numeric"),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.I), "d_month_y"),
    (re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.I), "month_d_y"),
    (re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", re.I), "month_y"),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\b", re.I), "d_month"),
    (re.compile(rf"\b(?:the\s+)?{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)\b", re.I), "month_d"),
    (re.compile(rf"\b(?:in|since|from|until|year)\s+{_YEAR}\b", re.I), "y"),
]


@dataclass(frozen=True, slots=True)
class DateMention:
    iso: str
    start: int
    end: int


def same_date(written: str, other: str) -> bool:
    """Whether `other` (said or recorded) is the date `written`: equal, one a less precise form of
    the other (2024-03 and 2024-03-15), or a day without a year (--03-15) on that day of any year."""
    if written == other or other.startswith(written + "-") or written.startswith(other + "-"):
        return True
    return written.startswith("--") and other.endswith(written[1:])


def find_dates(text: str, *, locale: str = "GB") -> list[DateMention]:
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for pattern, shape in _PATTERNS:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            iso = _iso(m.groups(), shape, locale)
            if iso:
                start = m.start(m.lastindex or 0) if shape == "y" else m.start()  # the year, not "in"
                found.append(DateMention(iso, start, m.end()))
                taken.append((start, m.end()))
    return sorted(found, key=lambda d: d.start)


def _iso(groups: tuple[str, ...], shape: str, locale: str) -> str | None:
    try:
        if shape == "ymd":
            y, mo, d = int(groups[0]), int(groups[1]), int(groups[2])
        elif shape == "numeric":
            first, second, year = int(groups[0]), int(groups[2]), groups[3]
            d, mo = (second, first) if locale.upper() == "US" else (first, second)
            if mo > 12 >= d:  # only one reading is a date ("03/15/2024" in a UK letter)
                d, mo = mo, d
            y = int(year) if len(year) == 4 else 2000 + int(year)
        elif shape == "d_month_y":
            d, mo, y = int(groups[0]), MONTHS[groups[1].lower()], int(groups[2])
        elif shape == "month_d_y":
            mo, d, y = MONTHS[groups[0].lower()], int(groups[1]), int(groups[2])
        elif shape == "month_y":
            return f"{int(groups[1]):04d}-{MONTHS[groups[0].lower()]:02d}"
        elif shape == "d_month":
            d, mo = int(groups[0]), MONTHS[groups[1].lower()]
            return f"--{mo:02d}-{d:02d}" if 1 <= d <= 31 else None
        elif shape == "month_d":
            mo, d = MONTHS[groups[0].lower()], int(groups[1])
            return f"--{mo:02d}-{d:02d}" if 1 <= d <= 31 else None
        else:
            return groups[-1]
    except (KeyError, ValueError):
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"
