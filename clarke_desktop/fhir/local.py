"""`FhirClient` over the in-process local_fhir store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from clarke_desktop.fhir.client import (
    FhirError,
    FhirInvalid,
    FhirNotFound,
    FhirUnavailable,
    Params,
    follow_pages,
)
from local_fhir import (
    Conflict,
    FhirStoreError,
    InvalidResource,
    NotFound,
    Store,
    StoreUnavailable,
    UnsupportedSearch,
    cipher,
)

T = TypeVar("T")
BASE_URL = "urn:local-fhir"


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise FhirNotFound(str(exc), exc.outcome, exc.status) from exc
    except (InvalidResource, UnsupportedSearch, Conflict) as exc:
        raise FhirInvalid(str(exc), exc.outcome, exc.status) from exc
    except StoreUnavailable as exc:
        raise FhirUnavailable(str(exc), exc.outcome, exc.status) from exc
    except FhirStoreError as exc:
        raise FhirError(str(exc), exc.outcome, exc.status) from exc
    except cipher.ERRORS as exc:  # corrupt file, disk full, locked past the timeout (plain or SQLCipher)
        raise FhirUnavailable(f"the FHIR database cannot be used: {exc}") from exc


class LocalFhirClient:
    """The app's FHIR client for its own database. Pass a `Store` (shared) or a path (opened here)."""

    def __init__(self, store_or_path: Store | str | Path, *, read_only: bool = False):
        if isinstance(store_or_path, Store):
            self._store, self._owns = store_or_path, False
        else:
            with _mapped_errors():
                self._store, self._owns = Store(store_or_path, create=False, read_only=read_only), True

    @property
    def store(self) -> Store:
        return self._store

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with _mapped_errors():
            return fn(*args)

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        return self._call(self._store.read, resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: str) -> dict[str, Any]:
        return self._call(self._store.vread, resource_type, id, version_id)

    def search(self, resource_type: str, params: Params | None = None) -> dict[str, Any]:
        return self._call(self._store.search, resource_type, params or {}, BASE_URL)

    def search_all(self, resource_type: str, params: Params | None = None) -> list[dict[str, Any]]:
        def next_page(url: str) -> dict[str, Any]:
            parts = urlsplit(url)
            return self.search(parts.path.rsplit("/", 1)[-1], parts.query)

        return follow_pages(self.search(resource_type, params), next_page, f"search {resource_type}")

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._store.create, resource)

    def update(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._store.update, resource)

    def delete(self, resource_type: str, id: str) -> None:
        self._call(self._store.delete, resource_type, id)

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._store.process_bundle, bundle)

    def patient_compartment(self, patient_id: str) -> list[dict[str, Any]]:
        return self._call(self._store.patient_compartment, patient_id)

    def quarantined_for_patient(self, patient_id: str) -> dict[str, int]:
        """The patient's resources a lenient import left in quarantine, by type ({} when none)."""
        return self._call(self._store.quarantined_for_patient, patient_id)

    def close(self) -> None:
        if self._owns:
            self._store.close()
