"""Turn a resource into rows for the typed search index tables."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from local_fhir.dates import OPEN_HIGH, OPEN_LOW, BadDate, date_range
from local_fhir.searchparams import Registry, SearchParam
from local_fhir.text import normalise

# table -> columns after (rid, rtype, param)
TABLES: dict[str, tuple[str, ...]] = {
    "token": ("system", "code", "text"),
    "string": ("norm", "exact"),
    "date": ("low", "high"),
    "reference": ("target_type", "target_id", "url"),
    "quantity": ("value", "system", "code", "unit"),
    "number": ("value",),
    "uri": ("value",),
}

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@lru_cache(maxsize=65536)  # a patient's and an encounter's references recur in every resource
def parse_reference(text: str) -> tuple[str | None, str | None]:
    """("Patient", "123") from "Patient/123", ".../Patient/123/_history/2"; (None, None) otherwise."""
    m = _REF.search(text)
    return (m.group(1), m.group(2)) if m else (None, None)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
        out: list[str] = []
        for key in parts:
            item = value.get(key)
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, list):
                out.extend(x for x in item if isinstance(x, str))
        if not out and isinstance(value.get("text"), str):
            out.append(value["text"])
        return out
    return []


def _tokens(value: Any) -> list[tuple[str | None, str | None, str | None]]:
    if isinstance(value, bool):
        return [(None, "true" if value else "false", None)]
    if isinstance(value, str):
        return [(None, value, None)]
    if not isinstance(value, dict):
        return []
    if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
        text: str | None = value.get("text") if isinstance(value.get("text"), str) else None
        rows: list[tuple[str | None, str | None, str | None]] = []
        for coding in value.get("coding") or []:
            if isinstance(coding, dict):
                display = coding.get("display")
                joined = " ".join(x for x in (text, display) if isinstance(x, str)) or None
                rows.append((coding.get("system"), coding.get("code"), joined))
        return rows or ([(None, None, text)] if text else [])
    if "code" in value:  # Coding
        return [(value.get("system"), value.get("code"), value.get("display"))]
    if "value" in value:  # Identifier, ContactPoint
        type_text = (value.get("type") or {}).get("text") if isinstance(value.get("type"), dict) else None
        return [(value.get("system"), str(value["value"]), type_text)]
    return []


def _dates(value: Any) -> list[tuple[float, float]]:
    try:
        if isinstance(value, str):
            return [date_range(value)]
        if isinstance(value, dict):
            if "start" in value or "end" in value:  # Period
                low = date_range(value["start"])[0] if value.get("start") else OPEN_LOW
                high = date_range(value["end"])[1] if value.get("end") else OPEN_HIGH
                return [(low, high)]
            out = [date_range(v) for v in value.get("event") or [] if isinstance(v, str)]  # Timing
            bounds = (
                (value.get("repeat") or {}).get("boundsPeriod")
                if isinstance(value.get("repeat"), dict)
                else None
            )
            if isinstance(bounds, dict):
                out += _dates(bounds)
            return out
    except BadDate:
        return []
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


def _quantities(value: Any) -> list[tuple[float, Any, Any, Any]]:
    if not isinstance(value, dict):
        return []
    if "low" in value or "high" in value:  # Range
        return [q for key in ("low", "high") for q in _quantities(value.get(key))]
    number = _number(value.get("value"))
    if number is None:
        return []
    return [(number, value.get("system"), value.get("code"), value.get("unit"))]


def _references(value: Any) -> list[tuple[str | None, str | None, str]]:
    text = value.get("reference") if isinstance(value, dict) else value  # canonical: a plain string
    if not isinstance(text, str) or text.startswith("#"):
        return []
    rtype, rid = parse_reference(text)
    if rtype is None and isinstance(value, dict) and isinstance(value.get("type"), str):
        rtype = value["type"]
    return [(rtype, rid, text)]


# Rows for the `:of-type` and `:identifier` modifiers go to the token table under their own names:
#   "<param>:of-type"    (type coding system, type coding code, identifier value) of an Identifier
#   "<param>:identifier" (identifier system, identifier value, Reference.type) of a Reference
OF_TYPE, IDENTIFIER = ":of-type", ":identifier"


def _of_type_rows(code: str, value: Any) -> list[tuple[Any, ...]]:
    """An Identifier's type codings, each with its value (R4 token `:of-type`)."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return []
    kind = value.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    return [
        (code + OF_TYPE, c.get("system"), c["code"], value["value"])
        for c in codings or []
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def _identifier_rows(code: str, value: Any) -> list[tuple[Any, ...]]:
    """A Reference's logical identifier (R4 reference `:identifier`), with the type it names."""
    ident = value.get("identifier") if isinstance(value, dict) else None
    if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
        return []
    kind = value.get("type") if isinstance(value.get("type"), str) else None
    return [(code + IDENTIFIER, ident.get("system"), ident["value"], kind)]


def param_rows(
    resource: dict[str, Any], param: SearchParam, extra: set[tuple[Any, ...]] | None = None
) -> set[tuple[Any, ...]]:
    """The rows (param, *columns) one search parameter gives for a resource. `extra` receives the
    token-table rows of its modifiers (`:of-type`, `:identifier`)."""
    assert param.expression is not None
    values = [v for v, _ in param.expression.evaluate(resource)]
    code = param.code
    rows: set[tuple[Any, ...]] = set()
    if not values:
        return rows
    if extra is not None:
        if param.type == "token":
            for v in values:
                if type(v) is dict and "type" in v and "value" in v:
                    extra.update(_of_type_rows(code, v))
        elif param.type == "reference":
            for v in values:
                if type(v) is dict and "identifier" in v:
                    extra.update(_identifier_rows(code, v))
    if param.type == "string":
        for v in values:
            rows.update((code, normalise(s), s) for s in _strings(v))
    elif param.type == "token":
        for v in values:
            rows.update((code, s, c, normalise(t) if t else None) for s, c, t in _tokens(v))
    elif param.type == "date":
        for v in values:
            rows.update((code, lo, hi) for lo, hi in _dates(v))
    elif param.type == "reference":
        for v in values:
            rows.update((code, *r) for r in _references(v))
    elif param.type == "quantity":
        for v in values:
            rows.update((code, *q) for q in _quantities(v))
    elif param.type == "number":
        rows.update((code, n) for n in map(_number, values) if n is not None)
    elif param.type == "uri":
        rows.update((code, v) for v in values if isinstance(v, str))
    return rows


def index_rows(
    resource: dict[str, Any], registry: Registry, *, every_param: bool = False
) -> dict[str, list[tuple[Any, ...]]]:
    """{table: [(param, *columns)]} for every indexed search parameter of the resource's type
    (not for aliases: `Registry.stored_as` says whose rows they read).

    Only parameters that can start from one of the resource's top-level elements are evaluated;
    `every_param` evaluates them all (the reference the shortcut is tested against)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    rtype = resource["resourceType"]
    pairs = registry.indexed_with_roots.get(rtype)
    if not pairs:
        return out
    roots, always = registry.by_root[rtype]
    wanted = set(range(len(pairs))) if every_param else set(always)
    for key in resource:
        wanted.update(roots.get(key, ()))
    extra: set[tuple[Any, ...]] = set()
    for i in sorted(wanted):
        param = pairs[i][0]
        rows = param_rows(resource, param, extra)
        if rows:
            out.setdefault(param.type, []).extend(rows)
    if extra:
        out.setdefault("token", []).extend(sorted(extra, key=repr))
    return out
