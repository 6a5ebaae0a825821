"""Every bundled resource is valid FHIR R4 (fhir.resources.R4B) and every reference resolves."""

from __future__ import annotations

from collections import Counter

import pytest
from fhir.resources.R4B import get_fhir_model_class


def _validate(resources) -> list[str]:
    errors = []
    for r in resources:
        try:
            get_fhir_model_class(r["resourceType"]).model_validate(r)
        except Exception as exc:  # collect all, report all
            errors.append(f"{r['resourceType']}/{r['id']}: {str(exc)[:300]}")
    return errors


def test_demo_bundles_validate(demo_resources) -> None:
    assert _validate(demo_resources) == []


def test_population_validates(population) -> None:
    assert _validate(population) == []


def test_validation_catches_a_bad_resource(population) -> None:
    # the check itself must be able to fail: an Observation without its required status
    obs = dict(next(r for r in population if r["resourceType"] == "Observation"))
    del obs["status"]
    assert len(_validate([obs])) == 1


def test_ids_unique_and_references_resolve(demo_resources, population, by_ref) -> None:
    refs = Counter(f"{r['resourceType']}/{r['id']}" for r in [*demo_resources, *population])
    assert [k for k, n in refs.items() if n > 1] == []
    dangling = []

    def walk(node, owner):
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref not in by_ref:
                dangling.append((owner, ref))
            for v in node.values():
                walk(v, owner)
        elif isinstance(node, list):
            for v in node:
                walk(v, owner)

    for r in [*demo_resources, *population]:
        walk(r, f"{r['resourceType']}/{r['id']}")
    assert dangling == []


def test_manifest_counts_match_files(manifest, demo_resources, population) -> None:
    assert manifest["counts"]["population"] == dict(
        sorted(Counter(r["resourceType"] for r in population).items())
    )
    assert manifest["counts"]["demo"] == dict(
        sorted(Counter(r["resourceType"] for r in demo_resources).items())
    )
    assert manifest["patients"]["population"] >= 45


@pytest.mark.parametrize("forbidden", ["Claim", "ExplanationOfBenefit"])
def test_no_us_billing_resources(population, forbidden) -> None:
    assert not any(r["resourceType"] == forbidden for r in population)
