"""JSON text that keeps numbers exactly as written (`87.940` stays `87.940`).

Files are parsed with `parse_float=Decimal`; `dumps` writes Decimals back with their original digits.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MARK = "\x00dec:"
_MARKED = re.compile(r'"\\u0000dec:([-+0-9.eE]+)"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a valid JSON number")
        return _MARK + str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)
    return _MARKED.sub(r"\1", text) if "\\u0000dec:" in text else text


def loads_exact(text: str | bytes) -> Any:
    """Parse keeping decimals exact (for storing)."""
    return json.loads(text, parse_float=Decimal)


def loads(text: str | bytes) -> Any:
    """Parse to plain Python types (for callers)."""
    return json.loads(text)
