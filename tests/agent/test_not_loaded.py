"""Part of a record held back by a lenient import is never silently missing: the context says what
could not be loaded, and an empty allergy list then never reads as "no allergies"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clarke_desktop.agent.context import retrieve_context
from clarke_desktop.fhir.local import LocalFhirClient
from local_fhir import Store


@pytest.fixture
def client(tmp_path: Path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Khan", "given": ["Amira"]}],
                      "gender": "female", "birthDate": "1960-02-01"}},
        # an allergy whose clinical status is not an R4 code: held back, not stored
        {"resource": {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p1"},
                      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                                     "code": "actve"}]},
                      "code": {"text": "Penicillin"}}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                      "subject": {"reference": "Patient/p1"}}},
    ]}  # fmt: skip
    (tmp_path / "export.json").write_text(json.dumps(bundle))
    store = Store(tmp_path / "fhir.sqlite3")
    report = store.import_paths([tmp_path / "export.json"], lenient=True)
    assert report.quarantined == 2
    c = LocalFhirClient(store)
    yield c
    store.close()


def test_the_context_names_what_could_not_be_loaded(client) -> None:
    ctx = retrieve_context(client, "p1")
    assert ctx.allergies == [] and ctx.not_loaded == {"AllergyIntolerance": 1, "Encounter": 1}
    assert ctx.retrieval_warnings[0].startswith(
        "Part of this record could not be loaded: 1 allergy intolerance, 1 encounter."
    )


@pytest.mark.gui
def test_the_allergy_banner_never_says_none_when_allergies_were_held_back(qapp, client) -> None:
    from clarke_desktop.gui.screens.patient import AllergyBanner

    ctx = retrieve_context(client, "p1")
    banner = AllergyBanner(ctx.allergies, incomplete="AllergyIntolerance" in ctx.not_loaded)
    assert banner.accessibleName() == "Allergies: part of the allergy record could not be loaded"
    assert banner.objectName() == "allergyBanner"  # red, never the neutral "none recorded"
