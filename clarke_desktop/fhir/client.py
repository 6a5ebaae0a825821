"""The FHIR client interface the app uses. Implementations: `local.LocalFhirClient` (in-process
local_fhir store) and `remote.RemoteFhirClient` (any FHIR R4 REST server, via httpx).

The same calls work against either, so a clinic can point the app at its hospital's FHIR server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Params = Mapping[str, str | Sequence[str]] | str  # dict (a list value = repeated parameter) or raw query


class FhirError(Exception):
    """Base error. `outcome` is the server's OperationOutcome when there is one."""

    def __init__(self, message: str, outcome: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.status = status


class FhirNotFound(FhirError):
    pass


class FhirInvalid(FhirError):
    """The resource or the search was refused (validation, unknown parameter)."""


class FhirUnavailable(FhirError):
    """The store or server cannot be reached (network down, database missing or locked)."""


@runtime_checkable
class FhirClient(Protocol):
    def read(self, resource_type: str, id: str) -> dict[str, Any]: ...

    def vread(self, resource_type: str, id: str, version_id: str) -> dict[str, Any]: ...

    def search(self, resource_type: str, params: Params | None = None) -> dict[str, Any]:
        """One page: a searchset Bundle."""
        ...

    def search_all(self, resource_type: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Every matching resource (mode=match), following `next` links."""
        ...

    def create(self, resource: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, resource: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, resource_type: str, id: str) -> None: ...

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]: ...

    def patient_compartment(self, patient_id: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...
