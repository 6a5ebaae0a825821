"""Structural validation of R4 resources with `fhir.resources.R4B` (R4 and R4B share these types).

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
from collections.abc import Iterable
from contextlib import suppress
from contextvars import ContextVar
from functools import cache
from typing import Any

from pydantic import ValidationError

from local_fhir.errors import InvalidResource, issue, operation_outcome

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
    """Load the model classes now (building their validators costs ~10-250 ms each): done before
    forking import workers, every worker inherits them instead of building its own."""
    for rtype in resource_types:
        with suppress(ValueError, KeyError, AttributeError):  # unknown: reported per resource
            _model(rtype)


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def problems(resource: Any, where: str | None = None) -> list[dict[str, Any]]:
    """OperationOutcome issues for `resource` (empty when valid). `where` prefixes each path."""
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
        return [
            issue(
                f"id {rid!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})", "value", f"{prefix}{rtype}.id"
            )
        ]
    memo = _memo_on.set(True)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            issue(err["msg"], "structure" if err["type"] == "extra_forbidden" else "invalid",
                  prefix + _path(rtype, tuple(err["loc"])))
            for err in exc.errors()
        ]  # fmt: skip
    except (ValueError, TypeError) as exc:  # validators outside pydantic's error model
        return [issue(str(exc), "invalid", f"{prefix}{rtype}")]
    finally:
        _memo_on.reset(memo)
    return []


def validate(resource: Any, where: str | None = None) -> None:
    """Raise InvalidResource listing every problem, or return when the resource is valid."""
    found = problems(resource, where)
    if found:
        rtype = resource.get("resourceType", "resource") if isinstance(resource, dict) else "resource"
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        where = found[0].get("expression", ["?"])[0]
        raise InvalidResource(
            f"invalid {rtype}: {found[0]['diagnostics']} at {where}{more}", operation_outcome(found)
        )
