"""Errors raised by the store. Each carries a FHIR OperationOutcome (`exc.outcome`) and an HTTP status."""

from __future__ import annotations

from typing import Any


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


def issue(
    diagnostics: str, code: str = "invalid", expression: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    item: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        item["expression"] = [expression]
    return item


class FhirStoreError(Exception):
    status = 500
    code = "exception"

    def __init__(self, message: str, outcome: dict[str, Any] | None = None):
        super().__init__(message)
        self.outcome = outcome or operation_outcome([issue(message, self.code)])


class NotFound(FhirStoreError):
    status = 404
    code = "not-found"


class Gone(NotFound):
    """The resource existed and was deleted (its history is kept)."""

    status = 410
    code = "deleted"


class InvalidResource(FhirStoreError):
    """A request the store cannot take as it is (not JSON, a url it cannot read, a type mismatch)."""

    status = 400
    code = "invalid"


class UnprocessableResource(InvalidResource):
    """A resource that is JSON but not valid R4 (its OperationOutcome lists every problem): 422."""

    status = 422
    code = "invalid"


class NotSupported(InvalidResource):
    """An operation, interaction or parameter the store does not implement (named in the message)."""

    status = 400
    code = "not-supported"


class UnsupportedSearch(FhirStoreError):
    """An unknown or unsupported search parameter, modifier or prefix; the message names it."""

    status = 400
    code = "not-supported"


class Conflict(FhirStoreError):
    """A conditional operation matched more than one resource, or a version precondition failed."""

    status = 412
    code = "conflict"


class Duplicate(Conflict):
    """A create of a resource that already exists, or a transaction naming one resource twice: 409."""

    status = 409
    code = "duplicate"


class StoreUnavailable(FhirStoreError):
    """The database file is missing, unreadable or not a local_fhir store."""

    status = 503
    code = "exception"
