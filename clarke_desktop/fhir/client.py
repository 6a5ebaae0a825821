"""The FHIR client interface the app uses. Implementations: `local.LocalFhirClient` (in-process
local_fhir store) and `remote.RemoteFhirClient` (any FHIR R4 REST server, via httpx).

The same calls work against either, so a clinic can point the app at its hospital's FHIR server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from clarke_desktop.errors import ClarkeError

Params = Mapping[str, str | Sequence[str]] | str  # dict (a list value = repeated parameter) or raw query


class FhirError(ClarkeError):
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


def quarantined_for_patient(client: FhirClient, patient_id: str) -> dict[str, int]:
    """The patient's resources that could not be loaded (quarantined), by type; {} for a remote server."""
    counts = getattr(client, "quarantined_for_patient", None)
    return dict(counts(patient_id)) if counts is not None else {}


MAX_PAGES = 10_000  # a guard against a paging loop, far beyond any patient record


def follow_pages(
    bundle: dict[str, Any], next_page: Callable[[str], dict[str, Any]], what: str
) -> list[dict[str, Any]]:
    """Every matching resource of a searchset, following its `next` links (one paging loop for
    the local store and a hospital server alike)."""
    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        out += [
            e["resource"]
            for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match"
        ]
        nxt = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        if not nxt:
            return out
        bundle = next_page(nxt)
    raise FhirError(f"{what} did not finish after {MAX_PAGES} pages")
