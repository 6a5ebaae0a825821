"""Validation of R4 resources: the R4 JSON rules (`r4json`: JSON types of primitives, no empty or
null values, ele-1, required bindings) on the JSON as received, then structure, cardinality and
formats with `fhir.resources.R4B` (R4 and R4B share these types). Every problem of both is listed,
once, with a FHIRPath expression.

Speed: fhir_core validates every nested element (each CodeableConcept, Reference, Coding...) through
a Python-level model validator, which is most of an import's cost. Within `problems()` we memoise
that step for elements already found valid: a valid element's result depends only on its own JSON
and its declared type (the checks that look across elements run on the parent), so the same
content under the same type is not validated twice. Only successes are remembered, so every error
still comes from a full validation; the memo is bounded, and only `problems()` uses it (the model
objects it shares are thrown away there, never handed to callers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import suppress
from contextvars import ContextVar
from functools import cache
from typing import Any

from pydantic import ValidationError

from local_fhir import r4json
from local_fhir.errors import UnprocessableResource, issue, operation_outcome

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


_MEMO_MAX_ENTRIES = 20_000  # a few tens of MB of small models; cleared whole when full
_MEMO_MAX_KEY = 4_000  # larger elements (attachments, narratives) are rarely repeated: not kept
_memo: dict[tuple[type, str], Any] = {}
_memo_on: ContextVar[bool] = ContextVar("local_fhir_validation_memo", default=False)
memo_stats = {"hits": 0, "misses": 0}


def _install_memo() -> bool:
    """Wrap fhir_core's nested-element validator; False when this fhir_core has no such hook."""
    from fhir_core import types as fhir_types

    original = fhir_types.FhirBase.__dict__.get("fhir_model_validator")
    if not isinstance(original, classmethod):
        return False
    validate_element = original.__func__

    def memoised(cls: type, value: Any, model_klass: type) -> Any:
        if type(value) is not dict or not _memo_on.get():
            return validate_element(cls, value, model_klass)
        # repr tells apart every JSON value we parse (str, int, Decimal, bool, None, list, dict).
        text = repr(value)
        if len(text) > _MEMO_MAX_KEY:
            return validate_element(cls, value, model_klass)
        key = (model_klass, text)
        known = _memo.get(key)
        if known is not None:
            memo_stats["hits"] += 1
            return known
        result = validate_element(cls, value, model_klass)  # raises on an invalid element
        memo_stats["misses"] += 1
        if len(_memo) >= _MEMO_MAX_ENTRIES:
            _memo.clear()
        _memo[key] = result
        return result

    fhir_types.FhirBase.fhir_model_validator = classmethod(memoised)  # type: ignore[method-assign, assignment]  # patching a third-party class
    return True


@cache
def memo_installed() -> bool:
    return _install_memo()


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class  # heavy import, only when first needed

    memo_installed()
    return get_fhir_model_class(resource_type)


def warm(resource_types: Iterable[str]) -> None:
    """Load the model classes now (building their validators costs ~10-250 ms each) and compile
    their R4 JSON tables: done before forking import workers, every worker inherits them instead of
    building its own."""
    for rtype in resource_types:
        with suppress(ValueError, KeyError, AttributeError):  # unknown: reported per resource
            r4json.compile_tree(_model(rtype))


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _covered(expression: str, reported: set[str]) -> bool:
    """Whether a problem at `expression` is one already reported there or above it."""
    return expression in reported or any(
        ch in ".[" and expression[:i] in reported for i, ch in enumerate(expression)
    )


def _prefixed(found: list[dict[str, Any]], rtype: str, where: str | None) -> list[dict[str, Any]]:
    """Issues with expressions under `where`: a Bundle entry's resource (`Bundle.entry[3].resource`)
    reads `Bundle.entry[3].resource.ofType(Patient).birthDate`; another location (an NDJSON line)
    is put in front of the path (`file.ndjson:12.Patient.birthDate`)."""
    if not where:
        return found
    prefix = f"{where}.ofType({rtype})" if where.endswith(".resource") else f"{where}.{rtype}"
    for item in found:
        item["expression"] = [prefix + e[len(rtype) :] if e.startswith(rtype) else f"{where}.{e}"
                              for e in item.get("expression", [])]  # fmt: skip
    return found


def structure_errors(resource: dict[str, Any], model: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """(location, message, kind) of each error fhir.resources finds (structure, cardinality,
    formats), through the memo; location () for an error outside pydantic's error model."""
    memo = _memo_on.set(True)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [(tuple(err["loc"]), err["msg"], err["type"]) for err in exc.errors()]
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # validators outside pydantic's error model (some fail on a value of the wrong JSON type)
        return [((), f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc), "value_error")]
    finally:
        _memo_on.reset(memo)
    return []


def _json_step(resource: Any, where: str | None) -> list[dict[str, Any]] | tuple[str, Any, list[dict[str, Any]]]:
    """The checks before fhir.resources: the final issues when the resource cannot go further,
    else (type, model, the R4 JSON problems)."""
    prefix = f"{where}." if where else ""
    if not isinstance(resource, dict):
        return [issue("a resource must be a JSON object", "structure", where)]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return [issue("resourceType is missing", "required", f"{prefix}resourceType")]
    try:
        model = _model(rtype)
    except (ValueError, KeyError, AttributeError):
        return [issue(f"unknown resourceType {rtype!r}", "not-supported", f"{prefix}resourceType")]
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not _ID.match(rid)):
        return _prefixed([issue(f"id {rid!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})", "value",
                                f"{rtype}.id")], rtype, where)  # fmt: skip
    return rtype, model, r4json.check(resource, _model)


def _structure_step(resource: dict[str, Any], where: str | None, rtype: str, model: Any,
                    found: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """fhir.resources' problems added to the R4 JSON ones, each place reported once."""
    reported = {e for item in found for e in item.get("expression", ())}
    for loc, message, kind in structure_errors(resource, model):
        if kind == "uuid_version":  # fhir.resources wants a version 4 uuid; R4 takes any (r4json checks it)
            continue
        expression = r4json.expression(resource, loc, _model) if loc else rtype
        if loc and _covered(expression, reported):
            continue
        if not loc and found:  # a validator outside pydantic's error model, after the JSON's problems
            continue
        if kind == "missing":
            message, code = "a required element is missing", "required"
        else:
            code = "structure" if kind == "extra_forbidden" else "invalid"
        found.append(issue(message, code, expression))
        reported.add(expression)
    return _prefixed(found, rtype, where)


def problems(resource: Any, where: str | None = None) -> list[dict[str, Any]]:
    """OperationOutcome issues for `resource` (empty when valid). `where` locates the resource
    (`Bundle.entry[3].resource`, `file.ndjson:12`) in each issue's expression."""
    first = _json_step(resource, where)
    if isinstance(first, list):
        return first
    return _structure_step(resource, where, *first)


def problems_of_many(items: Sequence[tuple[Any, str | None]]) -> list[list[dict[str, Any]]]:
    """`problems` of many (resource, where) at once, the same results: each step runs over them
    all before the next, so that its code stays in the CPU caches (an import's pieces)."""
    firsts = [_json_step(resource, where) for resource, where in items]
    return [
        first if isinstance(first, list) else _structure_step(resource, where, *first)
        for (resource, where), first in zip(items, firsts, strict=True)
    ]


def validate(resource: Any, where: str | None = None) -> None:
    """Raise InvalidResource listing every problem, or return when the resource is valid."""
    found = problems(resource, where)
    if found:
        rtype = resource.get("resourceType", "resource") if isinstance(resource, dict) else "resource"
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        where = found[0].get("expression", ["?"])[0]
        raise UnprocessableResource(
            f"invalid {rtype}: {found[0]['diagnostics']} at {where}{more}", operation_outcome(found)
        )
