"""Structural validation of R4 resources with `fhir.resources.R4B` (R4 and R4B share these types)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import suppress
from functools import cache
from typing import Any

from pydantic import ValidationError

from local_fhir.errors import InvalidResource, issue, operation_outcome

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class  # heavy import, only when first needed

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
