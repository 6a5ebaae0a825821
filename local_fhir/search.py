"""Translate R4 search parameters into SQL over the typed index tables.

Every parameter occurrence becomes one clause (repeated parameters AND, comma-separated values OR).
The most selective positive clause drives the query (`FROM (SELECT rid ...) CROSS JOIN resources`,
so SQLite cannot start from a full scan of the type); the others are correlated EXISTS checks on the
by-rid indexes. Patient-scoped queries are therefore driven by the reference index.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from local_fhir.dates import BadDate, date_range
from local_fhir.errors import UnsupportedSearch
from local_fhir.indexing import IDENTIFIER, OF_TYPE, parse_reference
from local_fhir.r4json import value_set
from local_fhir.searchparams import Registry, SearchParam
from local_fhir.text import normalise

DEFAULT_COUNT = 50
MAX_COUNT = 1000
MAX_VALUES = 200  # comma-separated values in one parameter (each adds an OR term to the SQL)
# What a per-type condition builder returns: (SQL conditions ORed, their args, negate, rank).
_Conditions = tuple[list[str], list[Any], bool, int]
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = {
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_format",
    "_pretty",
}
_KNOWN_UNSUPPORTED = {
    "_has", "_text", "_content", "_list", "_query", "_filter", "_elements", "_contained",
    "_containedType", "_type", "_include:iterate", "_revinclude:iterate", "_include:recurse",
}  # fmt: skip
_SPLIT = re.compile(r"(?<!\\),")

Params = Mapping[str, str | Sequence[str]] | list[tuple[str, str]] | str | None


def param_sql(registry: Registry, alias: str, rtype: str, code: str) -> tuple[str, list[Any]]:
    """SQL selecting a parameter's index rows in table alias `alias`: its own rows, or those of the
    parameters that store them (`patient` -> `subject` rows pointing at a Patient)."""
    stored = registry.stored_as(rtype, code)
    if all(target is None for _, target in stored):
        if len(stored) == 1:
            return f"{alias}.param = ?", [stored[0][0]]
        return f"{alias}.param IN ({','.join('?' * len(stored))})", [name for name, _ in stored]
    terms, args = [], []
    for name, target in stored:
        terms.append(f"{alias}.param = ? AND {alias}.target_type = ?" if target else f"{alias}.param = ?")
        args += [name, target] if target else [name]
    return "(" + " OR ".join(f"({t})" for t in terms) + ")", args


def parse_params(params: Params) -> list[tuple[str, str]]:
    """Normalise a dict (a list value = repeated parameter) or a raw query string into pairs."""
    if params is None:
        return []
    if isinstance(params, str):
        return parse_qsl(params.lstrip("?"), keep_blank_values=True)
    if isinstance(params, list):  # already (name, value) pairs
        return [(str(k), str(v)) for k, v in params]
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, str):
            pairs.append((key, value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            pairs.append((key, str(value)))
        else:
            if not isinstance(value, Sequence):
                raise UnsupportedSearch(
                    f"value of search parameter {key!r} must be a string or list of strings"
                )
            for item in value:
                pairs.append((key, str(item)))
    return pairs


def split_values(value: str) -> list[str]:
    return [v.replace("\\,", ",").replace("\\$", "$").replace("\\|", "|") for v in _SPLIT.split(value)]


@dataclass
class Clause:
    exists_sql: str  # uses {rid} for the row being checked
    exists_args: list[Any]
    driver_sql: str | None = None  # "SELECT rid ..." when the clause can drive the query
    driver_args: list[Any] = field(default_factory=list)
    rank: int = 99  # lower = more selective driver


@dataclass
class Plan:
    rtype: str
    clauses: list[Clause]
    sort: list[tuple[str, list[Any], bool]]  # (sql over r, args, descending)
    count: int
    offset: int
    includes: list[tuple[str, str, str | None]]  # (source type, param, target type)
    revincludes: list[tuple[str, str, str | None]]
    summary_count: bool
    total: bool
    echo: list[tuple[str, str]]  # the parameters, for links (without _count/_offset)


def _int_param(name: str, value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UnsupportedSearch(f"{name} must be a whole number, not {value!r}") from None
    if number < low:
        raise UnsupportedSearch(f"{name} must be at least {low}")
    return number


def _split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-+."):
        return value[:2], value[2:]
    return "eq", value


class SearchBuilder:
    def __init__(self, registry: Registry):
        self.registry = registry

    # -- entry point -----------------------------------------------------------------------------
    def plan(self, rtype: str, params: Params) -> Plan:
        pairs = parse_params(params)
        clauses: list[Clause] = []
        sort: list[tuple[str, list[Any], bool]] = []
        count, offset = DEFAULT_COUNT, 0
        includes: list[tuple[str, str, str | None]] = []
        revincludes: list[tuple[str, str, str | None]] = []
        summary_count, total = False, True
        echo: list[tuple[str, str]] = []
        for name, value in pairs:
            if name not in ("_count", "_offset"):
                echo.append((name, value))
            if name in _KNOWN_UNSUPPORTED:
                raise UnsupportedSearch(f"search parameter {name!r} is not supported")
            if name == "_count":
                count = min(_int_param("_count", value, 0), MAX_COUNT)
            elif name == "_offset":
                offset = _int_param("_offset", value, 0)
            elif name == "_sort":
                sort.extend(self._sort(rtype, value))
            elif name == "_include":
                includes.append(self._include_spec(value, "_include"))
            elif name == "_revinclude":
                revincludes.append(self._include_spec(value, "_revinclude"))
            elif name == "_summary":
                if value == "count":
                    summary_count = True
                elif value != "false":
                    raise UnsupportedSearch(f"_summary={value} is not supported (use count or false)")
            elif name == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise UnsupportedSearch(f"_total must be none, estimate or accurate, not {value!r}")
                total = value != "none"
            elif name in ("_format", "_pretty"):
                continue  # presentation only; the store always answers JSON
            else:
                clause = self.clause(rtype, name, value)
                if clause is not None:
                    clauses.append(clause)
        for src, _, _ in includes:
            if src != rtype:
                raise UnsupportedSearch(f"_include={src}:... does not start at the searched type {rtype}")
        return Plan(rtype, clauses, sort, count, offset, includes, revincludes, summary_count, total, echo)

    # -- result parameters -------------------------------------------------------------------
    def _include_spec(self, value: str, name: str) -> tuple[str, str, str | None]:
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise UnsupportedSearch(f"{name}={value!r}: expected SourceType:parameter[:TargetType]")
        src, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if code != "*":
            param = self.registry.lookup(src, code)
            if param.type != "reference":
                raise UnsupportedSearch(f"{name}={value!r}: {src}:{code} is not a reference parameter")
        return src, code, target

    def _sort(self, rtype: str, value: str) -> list[tuple[str, list[Any], bool]]:
        out: list[tuple[str, list[Any], bool]] = []
        for key in value.split(","):
            key = key.strip()
            desc = key.startswith("-")
            code = key[1:] if desc else key
            if not code:
                raise UnsupportedSearch(f"empty key in _sort={value!r}")
            if code == "_id":
                out.append(("r.id", [], desc))
            elif code == "_lastUpdated":
                out.append(("r.lu", [], desc))
            else:
                param = self.registry.lookup(rtype, code)
                column, table = {
                    "date": ("high" if desc else "low", "date"),
                    "string": ("norm", "string"),
                    "token": ("code", "token"),
                    "reference": ("url", "reference"),
                    "quantity": ("value", "quantity"),
                    "number": ("value", "number"),
                    "uri": ("value", "uri"),
                }[param.type]
                agg = "max" if desc else "min"
                which, which_args = param_sql(self.registry, "s", rtype, code)
                out.append(
                    (
                        f"(SELECT {agg}(s.{column}) FROM idx_{table} s WHERE s.rid = r.rid AND {which})",
                        which_args,
                        desc,
                    )
                )
        return out

    # -- one parameter occurrence ---------------------------------------------------------------
    def clause(self, rtype: str, name: str, value: str) -> Clause | None:
        head, _, chain = name.partition(".")
        code, _, modifier = head.partition(":")
        if code == "_id":
            return self._id_clause(rtype, modifier, value)
        if code == "_lastUpdated":
            return self._last_updated_clause(modifier, value)
        param = self.registry.lookup(rtype, code)
        if chain:
            if param.type != "reference":
                raise UnsupportedSearch(f"chained parameter {name!r}: {code} is not a reference parameter")
            return self._chain(rtype, param, modifier, chain, value)
        if (param.type, modifier) in (("token", "of-type"), ("reference", "identifier")):
            return self._modifier_rows(rtype, param, modifier, value, name)
        which, which_args = param_sql(self.registry, "x", rtype, code)
        if modifier == "missing":
            if value not in ("true", "false"):
                raise UnsupportedSearch(f"{name} must be true or false, not {value!r}")
            sql = f"EXISTS (SELECT 1 FROM idx_{param.type} x WHERE x.rid = {{rid}} AND {which})"
            return Clause(("NOT " if value == "true" else "") + sql, which_args)
        if value == "":
            return None  # an empty parameter is ignored (R4 search, "empty parameters")
        values = split_values(value)
        if len(values) > MAX_VALUES:
            raise UnsupportedSearch(
                f"{name} has {len(values)} comma-separated values; at most {MAX_VALUES} are supported"
            )
        build = getattr(self, f"_{param.type}")
        conds, args, negate, rank = build(param, modifier, values, name)
        cond = " OR ".join(f"({c})" for c in conds)
        exists = f"EXISTS (SELECT 1 FROM idx_{param.type} x WHERE x.rid = {{rid}} AND {which} AND ({cond}))"
        if negate:
            return Clause("NOT " + exists, [*which_args, *args])
        driver = f"SELECT DISTINCT x.rid FROM idx_{param.type} x WHERE x.rtype = ? AND {which} AND ({cond})"
        return Clause(exists, [*which_args, *args], driver, [rtype, *which_args, *args], rank)

    def _id_clause(self, rtype: str, modifier: str, value: str) -> Clause | None:
        if modifier == "missing":
            return Clause("1 = 0" if value == "true" else "1 = 1", [])
        if modifier not in ("", "not"):
            raise UnsupportedSearch(f"modifier :{modifier} is not supported on _id")
        if value == "":
            return None
        ids = split_values(value)
        if len(ids) > MAX_COUNT:
            raise UnsupportedSearch(f"_id has {len(ids)} values; at most {MAX_COUNT} are supported")
        marks = ",".join("?" * len(ids))
        if modifier == "not":
            return Clause(f"r.id NOT IN ({marks})", ids)
        return Clause(
            f"r.id IN ({marks})",
            ids,
            f"SELECT rid FROM resources WHERE rtype = ? AND id IN ({marks})",
            [rtype, *ids],
            0,
        )

    def _last_updated_clause(self, modifier: str, value: str) -> Clause | None:
        if modifier:
            raise UnsupportedSearch(f"modifier :{modifier} is not supported on _lastUpdated")
        if value == "":
            return None
        conds, args = [], []
        for item in split_values(value):
            cond, cargs = self._date_cond(item, "r.lu", "(r.lu + 0.001)", "_lastUpdated")
            conds.append(cond)
            args += cargs
        return Clause(" OR ".join(f"({c})" for c in conds), args)

    def _chain(self, rtype: str, param: SearchParam, modifier: str, chain: str, value: str) -> Clause:
        inner_code = chain.partition(":")[0]
        if "." in chain:
            raise UnsupportedSearch(f"chains deeper than one level are not supported ({param.code}.{chain})")
        targets = (
            [modifier]
            if modifier
            else [
                t
                for t in param.target
                if inner_code in self.registry.params(t) or inner_code in ("_id", "_lastUpdated")
            ]
        )
        if not targets:
            raise UnsupportedSearch(f"no target type of {param.code} has a search parameter {inner_code!r}")
        conds, args = [], []
        for target in targets:
            inner = self.clause(target, chain, value)
            if inner is None:
                continue
            if inner.driver_sql is not None:
                ids = (f"SELECT r2.id FROM ({inner.driver_sql}) d CROSS JOIN resources r2 ON r2.rid = d.rid "
                       f"WHERE r2.rtype = ? AND r2.deleted = 0")  # fmt: skip
                ids_args = [*inner.driver_args, target]
            else:
                ids = f"SELECT r.id FROM resources r WHERE r.rtype = ? AND r.deleted = 0 AND {inner.exists_sql.format(rid='r.rid')}"
                ids_args = [target, *inner.exists_args]
            conds.append(f"x.target_type = ? AND x.target_id IN ({ids})")
            args += [target, *ids_args]
        if not conds:
            return Clause("1 = 1", [])
        cond = " OR ".join(f"({c})" for c in conds)
        which, which_args = param_sql(self.registry, "x", rtype, param.code)
        exists = f"EXISTS (SELECT 1 FROM idx_reference x WHERE x.rid = {{rid}} AND {which} AND ({cond}))"
        driver = f"SELECT DISTINCT x.rid FROM idx_reference x WHERE x.rtype = ? AND {which} AND ({cond})"
        return Clause(exists, [*which_args, *args], driver, [rtype, *which_args, *args], 5)

    # -- per type conditions: (conditions, args, negate, rank) -----------------------------------
    def _string(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        conds, args = [], []
        for v in values:
            if modifier == "":
                n = normalise(v)
                conds.append("x.norm >= ? AND x.norm < ?")
                args += [n, n + "\U0010ffff"]
            elif modifier == "exact":
                conds.append("x.exact = ?")
                args.append(v)
            elif modifier == "contains":
                conds.append("instr(x.norm, ?) > 0")
                args.append(normalise(v))
            else:
                raise UnsupportedSearch(f"modifier :{modifier} is not supported on string parameter {name}")
        return conds, args, False, 3 if modifier == "exact" else 4 if modifier == "" else 8

    def _token(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        if modifier in ("in", "not-in"):
            return self._in_value_set(modifier, values, name)
        if modifier not in ("", "not", "text"):
            raise UnsupportedSearch(f"modifier :{modifier} is not supported on token parameter {name}")
        conds, args = [], []
        for v in values:
            if modifier == "text":
                conds.append("instr(x.text, ?) > 0")
                args.append(normalise(v))
                continue
            if "|" in v:
                system, _, code = v.partition("|")
                if system and code:
                    conds.append("x.code = ? AND x.system = ?")
                    args += [code, system]
                elif code:
                    conds.append("x.code = ? AND x.system IS NULL")
                    args.append(code)
                elif system:
                    conds.append("x.system = ?")
                    args.append(system)
                else:
                    raise UnsupportedSearch(f"{name}={v!r}: a token needs a code or a system")
            else:
                conds.append("x.code = ?")
                args.append(v)
        return conds, args, modifier == "not", 8 if modifier == "text" else 2

    @staticmethod
    def _in_value_set(modifier: str, values: list[str], name: str) -> _Conditions:
        """`:in` / `:not-in`: codes from a value set shipped with the store (those of R4's required
        bindings); any other value set is refused by name."""
        conds: list[str] = []
        args: list[Any] = []
        for url in values:
            codes = value_set(url.split("|", 1)[0])
            if codes is None:
                raise UnsupportedSearch(
                    f"{name}={url}: modifier :{modifier} is not supported with this value set, which is not "
                    "available locally (only the value sets of R4's required bindings are; no terminology "
                    "server is used)"
                )
            for system, members in sorted(codes.items()):
                marks = ",".join("?" * len(members))
                conds.append(f"x.code IN ({marks}) AND (x.system = ? OR x.system IS NULL)")
                args += [*sorted(members), system]
        return conds, args, modifier == "not-in", 7

    def _modifier_rows(self, rtype: str, param: SearchParam, modifier: str, value: str, name: str) -> Clause | None:
        """Token `:of-type` (`system|code|value` of an Identifier's type and value) and reference
        `:identifier` (`system|value` of a Reference's logical identifier), from their token rows."""
        if value == "":
            return None
        values = split_values(value)
        if len(values) > MAX_VALUES:
            raise UnsupportedSearch(f"{name} has {len(values)} comma-separated values; at most {MAX_VALUES} are supported")
        suffix = OF_TYPE if modifier == "of-type" else IDENTIFIER
        terms, which_args = [], []
        for stored, target in self.registry.stored_as(rtype, param.code):
            if target and modifier == "identifier":  # an alias such as `patient`: rows naming another type are not its
                terms.append("(x.param = ? AND (x.text IS NULL OR x.text = ?))")
                which_args += [stored + suffix, target]
            else:
                terms.append("x.param = ?")
                which_args.append(stored + suffix)
        which = "(" + " OR ".join(terms) + ")"
        conds, args = [], []
        for v in values:
            parts = v.split("|")
            if modifier == "of-type":
                if len(parts) != 3 or not parts[1] or not parts[2]:
                    raise UnsupportedSearch(f"{name}={v!r}: :of-type takes system|code|value (the identifier's type and value)")
                cond, cargs = "x.code = ? AND x.text = ?", [parts[1], parts[2]]
                if parts[0]:
                    cond, cargs = cond + " AND x.system = ?", [*cargs, parts[0]]
            else:
                if len(parts) > 2 or not parts[-1]:
                    raise UnsupportedSearch(f"{name}={v!r}: :identifier takes [system|]value")
                cond, cargs = "x.code = ?", [parts[-1]]
                if len(parts) == 2 and parts[0]:
                    cond, cargs = cond + " AND x.system = ?", [*cargs, parts[0]]
                elif len(parts) == 2:
                    cond += " AND x.system IS NULL"
            conds.append(cond)
            args += cargs
        cond = " OR ".join(f"({c})" for c in conds)
        exists = f"EXISTS (SELECT 1 FROM idx_token x WHERE x.rid = {{rid}} AND {which} AND ({cond}))"
        driver = f"SELECT DISTINCT x.rid FROM idx_token x WHERE x.rtype = ? AND {which} AND ({cond})"
        return Clause(exists, [*which_args, *args], driver, [rtype, *which_args, *args], 2)

    def _reference(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        if modifier and not (modifier[0].isupper() and modifier.isalpha()):
            raise UnsupportedSearch(f"modifier :{modifier} is not supported on reference parameter {name}")
        conds, args = [], []
        for v in values:
            rtype, rid = parse_reference(v)
            if rtype is None and re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", v):
                rtype, rid = (modifier or None), v
            if modifier and rtype != modifier:
                raise UnsupportedSearch(f"{name}={v!r}: the value does not point at a {modifier}")
            if rid is None:
                conds.append("x.url = ?")  # canonical URL or other absolute reference
                args.append(v)
            elif rtype:
                conds.append("x.target_id = ? AND x.target_type = ?")
                args += [rid, rtype]
            else:
                conds.append("x.target_id = ?")
                args.append(rid)
        return conds, args, False, 1

    @staticmethod
    def _compared(
        kind: str, modifier: str, values: list[str], name: str, cond: Callable[[str], tuple[str, list[Any]]]
    ) -> _Conditions:
        """Date, number and quantity parameters: no modifiers, a comparison (eq, lt, ge...) per value."""
        if modifier:
            raise UnsupportedSearch(f"modifier :{modifier} is not supported on {kind} parameter {name}")
        conds, args = [], []
        for v in values:
            c, a = cond(v)
            conds.append(c)
            args += a
        return conds, args, False, 6

    def _date(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        return self._compared(
            "date", modifier, values, name, lambda v: self._date_cond(v, "x.low", "x.high", name)
        )

    @staticmethod
    def _date_cond(value: str, low: str, high: str, name: str) -> tuple[str, list[Any]]:
        prefix, text = _split_prefix(value)
        try:
            pl, ph = date_range(text)
        except BadDate as exc:
            raise UnsupportedSearch(f"{name}={value!r}: {exc}") from None
        inside = f"{low} >= ? AND {high} <= ?"
        table: dict[str, tuple[str, list[Any]]] = {
            "eq": (inside, [pl, ph]),
            "ne": (f"NOT ({inside})", [pl, ph]),
            "gt": (f"{high} > ?", [ph]),
            "lt": (f"{low} < ?", [pl]),
            "ge": (f"{high} > ? OR ({inside})", [ph, pl, ph]),
            "le": (f"{low} < ? OR ({inside})", [pl, pl, ph]),
            "sa": (f"{low} >= ?", [ph]),
            "eb": (f"{high} <= ?", [pl]),
        }
        if prefix == "ap":  # within 10% of the gap between the value and now (at least the value's own range)
            slack = 0.1 * abs(time.time() - pl)
            return f"{low} < ? AND {high} > ?", [ph + slack, pl - slack]
        return table[prefix]

    def _number_cond(self, value: str, column: str, name: str) -> tuple[str, list[Any]]:
        prefix, text = _split_prefix(value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise UnsupportedSearch(f"{name}={value!r}: {text!r} is not a number") from None
        if not number.is_finite():
            raise UnsupportedSearch(f"{name}={value!r}: {text!r} is not a finite number")
        exponent = number.as_tuple().exponent
        try:
            n = float(number)
            half = 0.5 * 10.0 ** (exponent if isinstance(exponent, int) else 0)  # implied precision
        except OverflowError:
            raise UnsupportedSearch(f"{name}={value!r}: {text!r} is out of range") from None
        if n in (float("inf"), float("-inf")):
            raise UnsupportedSearch(f"{name}={value!r}: {text!r} is out of range")
        table = {
            "eq": (f"{column} >= ? AND {column} < ?", [n - half, n + half]),
            "ne": (f"NOT ({column} >= ? AND {column} < ?)", [n - half, n + half]),
            "gt": (f"{column} > ?", [n]),
            "lt": (f"{column} < ?", [n]),
            "ge": (f"{column} >= ?", [n]),
            "le": (f"{column} <= ?", [n]),
            "sa": (f"{column} > ?", [n]),
            "eb": (f"{column} < ?", [n]),
            "ap": (f"{column} >= ? AND {column} <= ?", [n - abs(n) * 0.1, n + abs(n) * 0.1]),
        }
        return table[prefix]

    def _quantity_cond(self, value: str, name: str) -> tuple[str, list[Any]]:
        number, _, rest = value.partition("|")
        system, _, code = rest.partition("|")
        c, a = self._number_cond(number, "x.value", name)
        if system and code:
            return f"({c}) AND x.system = ? AND x.code = ?", [*a, system, code]
        if code:
            return f"({c}) AND (x.code = ? OR x.unit = ?)", [*a, code, code]
        if system:
            return f"({c}) AND x.system = ?", [*a, system]
        return c, a

    def _number(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        return self._compared(
            "number", modifier, values, name, lambda v: self._number_cond(v, "x.value", name)
        )

    def _quantity(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        return self._compared("quantity", modifier, values, name, lambda v: self._quantity_cond(v, name))

    def _uri(self, param: SearchParam, modifier: str, values: list[str], name: str) -> _Conditions:
        conds: list[str] = []
        args: list[Any] = []  # strings and lengths
        for v in values:
            if modifier == "":
                conds.append("x.value = ?")
                args.append(v)
            elif modifier == "below":
                conds.append("substr(x.value, 1, ?) = ?")
                args += [len(v), v]
            elif modifier == "above":
                conds.append("substr(?, 1, length(x.value)) = x.value")
                args.append(v)
            else:
                raise UnsupportedSearch(f"modifier :{modifier} is not supported on uri parameter {name}")
        return conds, args, False, 3 if modifier == "" else 8
