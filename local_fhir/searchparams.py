"""The search parameters the store knows, loaded from the generated package data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from local_fhir.errors import UnsupportedSearch
from local_fhir.fhirpath import Expression


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    expression: Expression | None
    target: tuple[str, ...] = ()
    unsupported: str | None = None


def _load(name: str) -> Any:
    return json.loads(resources.files("local_fhir").joinpath(name).read_text(encoding="utf-8"))


def _param(code: str, raw: dict[str, Any]) -> SearchParam:
    expr = Expression(raw["expression"]) if raw.get("expression") and not raw.get("unsupported") else None
    return SearchParam(code, raw["type"], expr, tuple(raw.get("target", ())), raw.get("unsupported"))


Stored = tuple[str, str | None]  # (parameter whose rows hold the values, target type they must have)
_RESOLVE_IS = re.compile(r"^(?P<base>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]+)\)$")


def _aliases(table: dict[str, SearchParam]) -> dict[str, tuple[Stored, ...]]:
    """Parameters whose rows equal other parameters' rows:
    - `X.where(resolve() is T)` where another reference parameter is `X` (Observation `patient` is
      `subject` with target type Patient);
    - a union of other parameters' paths of the same type (`combo-code` = `code` | `component-code`).
    The stored parameters are never aliases themselves, so one lookup always finds the rows."""
    exprs = {c: p.expression for c, p in table.items() if p.expression is not None}
    kind = {c: table[c].type for c in exprs}
    by_text = {e.text: c for c, e in exprs.items()}
    out: dict[str, tuple[Stored, ...]] = {}
    for code, expr in exprs.items():
        m = _RESOLVE_IS.match(expr.text)
        base = by_text.get(m.group("base")) if m else None
        if m is None or base is None or base == code:
            continue
        if kind[code] == kind[base] == "reference":
            out[code] = ((base, m.group("type")),)
    branches = {c: e.branch_keys() for c, e in exprs.items() if c not in out}

    def parts_of(code: str, among: Iterable[str]) -> list[str] | None:
        mine = branches[code]
        if mine is None or len(mine) < 2:
            return None
        parts = [o for o in among if o != code and kind[o] == kind[code] and (b := branches[o]) and b < mine]
        covered: set[Any] = set().union(*(branches[o] or () for o in parts))
        return sorted(parts) if parts and covered == mine else None

    unions = {c for c in branches if parts_of(c, branches)}
    unions -= {base for via in out.values() for base, _ in via}  # an alias's base keeps its rows
    for code in unions:  # built from parameters that are not unions themselves
        parts = parts_of(code, [c for c in branches if c not in unions])
        if parts:
            out[code] = tuple((other, None) for other in parts)
    return out


class Registry:
    def __init__(self) -> None:
        data = _load("search_parameters.json")
        resource_level = {code: _param(code, raw) for code, raw in data["resource"].items()}
        self.resource_types: frozenset[str] = frozenset(data["resource_types"])
        self.full_types: frozenset[str] = frozenset(t for t, v in data["types"].items() if v["full"])
        self._params: dict[str, dict[str, SearchParam]] = {}
        for rtype, entry in data["types"].items():
            table = {code: _param(code, raw) for code, raw in entry["params"].items()}
            if entry["full"]:
                table.update(resource_level)
            self._params[rtype] = table
        self.compartment: dict[str, list[str]] = _load("compartment_patient.json")["params"]
        # A parameter whose rows another one already stores is not stored again (a fifth of all
        # index rows): searches read it from the other (`stored_as`).
        self.aliases: dict[tuple[str, str], tuple[Stored, ...]] = {}
        for rtype, table in self._params.items():
            self.aliases.update({(rtype, code): via for code, via in _aliases(table).items()})
        # Only the parameters we evaluate, and do not read from another, produce index rows.
        self.indexed: dict[str, list[SearchParam]] = {
            rtype: [
                p for p in table.values() if p.expression is not None and (rtype, p.code) not in self.aliases
            ]
            for rtype, table in self._params.items()
        }
        self.indexed_with_roots: dict[str, list[tuple[SearchParam, frozenset[str] | None]]] = {
            rtype: [(p, p.expression.first_elements()) for p in params if p.expression is not None]
            for rtype, params in self.indexed.items()
        }

        # Per type: top-level element -> positions in indexed_with_roots of the parameters that can
        # start from it, plus those that always need evaluating, so the indexer looks only at
        # parameters whose elements a resource has (in the order of indexed_with_roots).
        self.by_root: dict[str, tuple[dict[str, tuple[int, ...]], tuple[int, ...]]] = {}
        for rtype, pairs in self.indexed_with_roots.items():
            roots: dict[str, list[int]] = {}
            always = []
            for i, (_, first) in enumerate(pairs):
                if first is None:
                    always.append(i)
                else:
                    for name in first:
                        roots.setdefault(name, []).append(i)
            self.by_root[rtype] = ({k: tuple(v) for k, v in roots.items()}, tuple(always))

    def stored_as(self, rtype: str, code: str) -> tuple[Stored, ...]:
        """Where a parameter's index rows are: (stored parameter, required target type or None)."""
        return self.aliases.get((rtype, code), ((code, None),))

    def compartment_stored(self, rtype: str) -> frozenset[str]:
        """The stored parameters whose rows pointing at a Patient put a resource of `rtype` in
        that Patient's compartment (the compartment's own parameters, read through aliases)."""
        return frozenset(
            name for code in self.compartment.get(rtype, ()) for name, _ in self.stored_as(rtype, code)
        )

    def params(self, rtype: str) -> dict[str, SearchParam]:
        return self._params.get(rtype, {})

    def lookup(self, rtype: str, code: str) -> SearchParam:
        param = self._params.get(rtype, {}).get(code)
        if param is None:
            hint = (
                "" if rtype in self.full_types else f" ({rtype} is searchable by _id and _lastUpdated only)"
            )
            raise UnsupportedSearch(f"unknown search parameter {code!r} for {rtype}{hint}")
        if param.unsupported:
            raise UnsupportedSearch(f"search parameter {rtype}:{code} is not supported: {param.unsupported}")
        return param


@cache
def registry() -> Registry:
    return Registry()
