"""JSON text that keeps numbers exactly as written (`87.940` stays `87.940`).

Files are parsed with decimals as `Decimal`; `dumps` writes them back with their original digits.
msgspec does both (its float hook and `decimal_format="number"`): an import spends a tenth of the
time on JSON that the standard library needs, with the same text out (a test checks it).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import msgspec

_exact = msgspec.json.Decoder(float_hook=Decimal)
_plain = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder(decimal_format="number")
_BOM = b"\xef\xbb\xbf"


def _non_finite(value: Any) -> bool:
    if isinstance(value, float | Decimal):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as is; NaN and infinities are refused (msgspec would write a
    float NaN as null, losing it), checked only when the text could hold one."""
    data = _encoder.encode(obj)
    if (b"NaN" in data or b"Infinity" in data or b"null" in data) and _non_finite(obj):
        raise ValueError("NaN and infinite numbers cannot be written as JSON")
    return data.decode()


def _decode(decoder: msgspec.json.Decoder[Any], text: str | bytes) -> Any:
    if isinstance(text, bytes | bytearray) and text.startswith(_BOM):  # files saved by Windows tools
        text = text[len(_BOM) :]
    try:
        return decoder.decode(text)
    except msgspec.DecodeError as exc:  # its message says what and where (byte offset)
        raise ValueError(f"not valid JSON: {exc}") from None


def loads_exact(text: str | bytes) -> Any:
    """Parse keeping decimals exact (for storing)."""
    return _decode(_exact, text)


def loads(text: str | bytes) -> Any:
    """Parse to plain Python types (for callers)."""
    return _decode(_plain, text)
