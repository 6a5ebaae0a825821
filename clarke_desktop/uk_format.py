"""Dates and NHS numbers as UK clinicians write them, one way for the screens, letters and PDFs."""

from __future__ import annotations

import re
from datetime import datetime

_ISO = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?")


def uk_date(value: str | None, missing: str = "") -> str:
    """2026-01-15 or 2026-01-15T09:00:00Z -> 15/01/2026; 2026-01 -> 01/2026; anything else as given."""
    if not value:
        return missing
    m = _ISO.match(value)
    if not m:
        return value
    year, month, day = m.groups()
    return f"{day}/{month}/{year}" if day else f"{month}/{year}"


def local_time(instant: str | None, missing: str = "", *, zone: bool = False) -> str:
    """An instant stored in UTC (2026-12-07T04:00:06Z) in this computer's time zone, as a UK
    clinician reads it: "07/12/2026 04:00" (GMT) or "07/07/2026 10:00" (BST). A date alone, or
    text that is no instant, is shown as given. `zone` adds the zone's name (a signature's time)."""
    if not instant:
        return missing
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return instant
    if moment.tzinfo is None or "T" not in instant:
        return uk_date(instant) if "T" not in instant else instant
    return moment.astimezone().strftime("%d/%m/%Y %H:%M %Z" if zone else "%d/%m/%Y %H:%M")


def record_date(value: str | None) -> str:
    """A record's date in a letter: "undated" when the record has none."""
    return uk_date(value, "undated")


def nhs_number(value: str | None, missing: str = "not recorded") -> str:
    """10 digits as 3-3-4 ("999 001 0013"); anything else as given."""
    if not value:
        return missing
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 else value


# UCUM codes as a clinician writes the unit ("{score}" is a UCUM annotation: no unit at all).
_UNIT_DISPLAY = {
    "{score}": "", "{ratio}": "", "1": "", "10*9/L": "×10⁹/L", "10*12/L": "×10¹²/L", "10*6/L": "×10⁶/L",
    "mm[Hg]": "mmHg", "umol/L": "µmol/L", "ug/L": "µg/L", "ug": "µg", "kg/m2": "kg/m²",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²", "mL/min/1.73m2": "mL/min/1.73 m²", "/min": "/min", "Cel": "°C",
    "[degF]": "°F", "[IU]/L": "IU/L", "m[IU]/L": "mIU/L", "%{HbA1c}": "%", "{beats}/min": "beats/min",
    "{breaths}/min": "breaths/min",
}  # fmt: skip


def unit_display(unit: str | None) -> str:
    """A recorded (UCUM) unit in the form clinicians read: "10*9/L" -> "×10⁹/L", "{score}" -> ""."""
    if not unit:
        return ""
    return _UNIT_DISPLAY.get(unit, unit)
