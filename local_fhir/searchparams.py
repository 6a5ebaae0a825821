"""The search parameters the store knows, loaded from the generated package data."""

from __future__ import annotations

import json
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
        # Only the parameters we evaluate produce index rows.
        self.indexed: dict[str, list[SearchParam]] = {
            rtype: [p for p in table.values() if p.expression is not None]
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
