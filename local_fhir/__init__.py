"""local_fhir: an in-process FHIR R4 store on SQLite."""
