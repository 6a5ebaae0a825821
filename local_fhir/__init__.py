"""local_fhir: an in-process FHIR R4 store on SQLite.

from local_fhir import Store
store = Store("fhir.sqlite3")
store.create({"resourceType": "Patient", "name": [{"family": "Thompson"}]})
store.search("Patient", {"name": "thom"})
"""

from local_fhir.errors import (
    Conflict,
    Duplicate,
    FhirStoreError,
    Gone,
    InvalidResource,
    NotFound,
    NotSupported,
    StoreUnavailable,
    UnprocessableResource,
    UnsupportedSearch,
)
from local_fhir.importer import FileResult, ImportProgress, ImportReport
from local_fhir.store import Store

__all__ = [
    "Conflict",
    "Duplicate",
    "FhirStoreError",
    "FileResult",
    "Gone",
    "ImportProgress",
    "ImportReport",
    "InvalidResource",
    "NotFound",
    "NotSupported",
    "Store",
    "StoreUnavailable",
    "UnprocessableResource",
    "UnsupportedSearch",
]
