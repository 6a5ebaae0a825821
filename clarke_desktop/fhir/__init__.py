"""One FHIR client interface, two implementations: in-process local_fhir and a remote R4 server."""
