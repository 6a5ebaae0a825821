"""`FhirClient` for any FHIR R4 REST server, over httpx."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from clarke_desktop.fhir.client import (
    FhirError,
    FhirInvalid,
    FhirNotFound,
    FhirUnavailable,
    Params,
    follow_pages,
)

FHIR_JSON = "application/fhir+json"


def _query(params: Params | None) -> list[tuple[str, str]] | str:
    if params is None:
        return []
    if isinstance(params, str):
        return params.lstrip("?")
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, str):
            pairs.append((key, value))
        elif isinstance(value, Sequence):
            pairs += [(key, str(v)) for v in value]
        else:
            pairs.append((key, str(value)))
    return pairs


class RemoteFhirClient:
    """Talks to a FHIR R4 server at `base_url` (e.g. a hospital server, or `local-fhir serve`)."""

    def __init__(self, base_url: str, timeout: float = 10, *, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None):  # fmt: skip
        from clarke_desktop.addresses import insecure_reason

        refused = insecure_reason(base_url)
        if refused:  # the record and the signed letters would cross the network in the clear
            raise FhirError(f"The hospital FHIR server address cannot be used: {refused}")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=timeout,
            headers={"Accept": FHIR_JSON, **(headers or {})},
            transport=transport,
        )

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise FhirUnavailable(
                f"the FHIR server at {self.base_url} did not answer in time ({exc})"
            ) from exc
        except httpx.TransportError as exc:
            raise FhirUnavailable(f"cannot reach the FHIR server at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            self._raise(response, f"{method} {url}")
        return response

    @staticmethod
    def _raise(response: httpx.Response, what: str) -> None:
        outcome = None
        try:
            body = response.json()
            if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
                outcome = body
        except ValueError:
            pass
        detail = ""
        if outcome:
            detail = "; ".join(str(i.get("diagnostics", i.get("code", ""))) for i in outcome.get("issue", []))
        message = f"{what}: HTTP {response.status_code}" + (f": {detail}" if detail else "")
        status = response.status_code
        if status in (404, 410):
            raise FhirNotFound(message, outcome, status)
        if status in (400, 409, 412, 422):
            raise FhirInvalid(message, outcome, status)
        if status in (502, 503, 504):
            raise FhirUnavailable(message, outcome, status)
        raise FhirError(message, outcome, status)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body: dict[str, Any] = response.json()
            return body
        except ValueError as exc:
            raise FhirError(f"the FHIR server answered something that is not JSON: {exc}") from exc

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        return self._json(self._request("GET", f"{resource_type}/{id}"))

    def vread(self, resource_type: str, id: str, version_id: str) -> dict[str, Any]:
        return self._json(self._request("GET", f"{resource_type}/{id}/_history/{version_id}"))

    def search(self, resource_type: str, params: Params | None = None) -> dict[str, Any]:
        query = _query(params)
        if isinstance(query, str):
            return self._json(self._request("GET", f"{resource_type}?{query}" if query else resource_type))
        return self._json(self._request("GET", resource_type, params=query))

    def _follow(self, bundle: dict[str, Any], what: str) -> list[dict[str, Any]]:
        return follow_pages(bundle, lambda url: self._json(self._request("GET", url)), what)

    def search_all(self, resource_type: str, params: Params | None = None) -> list[dict[str, Any]]:
        return self._follow(self.search(resource_type, params), f"search {resource_type}")

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._request("POST", resource["resourceType"], json=resource,
                                        headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"}))  # fmt: skip

    def update(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"{resource['resourceType']}/{resource['id']}"
        return self._json(self._request("PUT", url, json=resource,
                                        headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"}))  # fmt: skip

    def delete(self, resource_type: str, id: str) -> None:
        self._request("DELETE", f"{resource_type}/{id}")

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._request("POST", "", json=bundle, headers={"Content-Type": FHIR_JSON}))

    def patient_compartment(self, patient_id: str) -> list[dict[str, Any]]:
        """Patient/{id}/$everything, following paging links."""
        bundle = self._json(self._request("GET", f"Patient/{patient_id}/$everything"))
        return self._follow(bundle, f"Patient/{patient_id}/$everything")

    def close(self) -> None:
        self._http.close()
