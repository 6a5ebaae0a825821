"""FHIR date/dateTime/instant values as half-open epoch-second ranges [low, high).

A partial date covers its whole precision: "2021" is all of 2021, "2021-03-04T10:15" a minute.
Values without a zone (dates, or search values) are taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

OPEN_LOW = -1.0e15  # an open Period start / end, far outside any real date
OPEN_HIGH = 1.0e15

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})"
    r"(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_MAX_HIGH = datetime(9999, 12, 31, tzinfo=UTC).timestamp() + 86400


class BadDate(ValueError):
    pass


def date_range(text: str) -> tuple[float, float]:
    if not isinstance(text, str):
        raise BadDate(f"{text!r} is not a FHIR date, dateTime or instant (not text)")
    return _string_range(text)


@lru_cache(maxsize=16384)  # an encounter's timestamp is shared by all of its observations
def _string_range(text: str) -> tuple[float, float]:
    m = _DATE.match(text.strip())
    if not m:
        raise BadDate(
            f"{text!r} is not a FHIR date, dateTime or instant (YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|+hh:mm]]]])"
        )
    g = m.groupdict()
    try:
        year = int(g["y"])
        month = int(g["m"] or 1)
        day = int(g["d"] or 1)
        start = datetime(year, month, day, int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0), tzinfo=UTC)
    except ValueError as exc:
        raise BadDate(f"{text!r} is not a valid date: {exc}") from None
    if g["f"]:
        start += timedelta(microseconds=int((g["f"] + "000000")[:6]))
    if g["tz"] and g["tz"] != "Z":
        sign = 1 if g["tz"][0] == "+" else -1
        start -= sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6]))
    low = start.timestamp()
    if g["f"]:
        high = low + 10.0 ** -len(g["f"])
    elif g["S"]:
        high = low + 1
    elif g["M"]:
        high = low + 60
    elif g["d"]:
        high = low + 86400
    elif g["m"]:
        nxt = (
            datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            if year < 9999 or month < 12
            else None
        )
        high = nxt.timestamp() if nxt else _MAX_HIGH
    else:
        high = datetime(year + 1, 1, 1, tzinfo=UTC).timestamp() if year < 9999 else _MAX_HIGH
    return low, high


def now_instant() -> str:
    """meta.lastUpdated: an instant with milliseconds, in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
