"""JSON text that keeps numbers exactly as written (`87.940` stays `87.940`).

Files are parsed with decimals as `Decimal`; `dumps` writes them back with their original digits.
msgspec does both (its float hook and `decimal_format="number"`): an import spends a tenth of the
time on JSON that the standard library needs, with the same text out (a test checks it).

`loads_exact` (everything that comes from outside: files, request bodies, corrected quarantine
entries) refuses JSON nested more than `MAX_DEPTH` arrays and objects deep with a ValueError that
says so: code that walks a resource recursively (validation, indexing) never meets a
RecursionError, and a file or request that is nested too deeply is refused, not a crash.
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
MAX_DEPTH = 100  # arrays and objects; real FHIR is < 20 deep (a Bundle's entry resources included)


class TooDeep(ValueError):
    """JSON nested more deeply than the limit (refused before anything walks it recursively)."""


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


def _too_deep(max_depth: int) -> TooDeep:
    return TooDeep(
        f"JSON nested more than {max_depth} arrays/objects deep: refused (the limit is {max_depth})"
    )


def _check_depth(doc: Any, text: str | bytes, max_depth: int) -> None:
    """Depth first without recursion; skipped when the text has too few brackets to be deep."""
    if isinstance(text, str):
        brackets = text.count("[") + text.count("{")
    else:
        brackets = text.count(b"[") + text.count(b"{")
    if brackets <= max_depth:
        return
    if not isinstance(doc, dict | list):
        return
    stack = [iter(doc.values() if type(doc) is dict else doc)]  # one iterator per open container
    while stack:
        for value in stack[-1]:
            kind = type(value)
            if kind is dict or kind is list:
                if len(stack) >= max_depth:
                    raise _too_deep(max_depth)
                stack.append(iter(value.values() if kind is dict else value))
                break
        else:
            stack.pop()


def _decode(decoder: msgspec.json.Decoder[Any], text: str | bytes, max_depth: int | None) -> Any:
    if isinstance(text, bytes | bytearray) and text.startswith(_BOM):  # files saved by Windows tools
        text = text[len(_BOM) :]
    try:
        doc = decoder.decode(text)
    except msgspec.DecodeError as exc:  # its message says what and where (byte offset)
        raise ValueError(f"not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's own guard (about 1,000 levels, less on a deep stack)
        raise _too_deep(max_depth or MAX_DEPTH) from None
    if max_depth is not None:
        _check_depth(doc, text, max_depth)
    return doc


def loads_exact(text: str | bytes, max_depth: int | None = MAX_DEPTH) -> Any:
    """Parse keeping decimals exact (for storing); deeper than `max_depth` is a `TooDeep` error."""
    return _decode(_exact, text, max_depth)


def loads(text: str | bytes, max_depth: int | None = None) -> Any:
    """Parse to plain Python types (for callers; text the store wrote needs no depth check)."""
    return _decode(_plain, text, max_depth)
