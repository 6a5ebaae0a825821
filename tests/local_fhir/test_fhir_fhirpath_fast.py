"""The flat-path evaluator used for indexing agrees with the general recursive one."""

from __future__ import annotations

from pathlib import Path

from local_fhir.jsontext import loads_exact
from local_fhir.searchparams import registry

REPO = Path(__file__).resolve().parents[2]


def test_fast_evaluation_matches_the_reference_evaluator(shared_dir: Path) -> None:
    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:3]
    files += sorted((REPO / "resources" / "fhir" / "demo").glob("*.json"))  # value[x] of every kind
    resources = [e["resource"] for f in files for e in loads_exact(f.read_bytes())["entry"]]
    reg = registry()
    compared = found = 0
    for resource in resources:
        rtype = resource["resourceType"]
        for param, _ in reg.indexed_with_roots.get(rtype, ()):
            assert param.expression is not None
            expected = param.expression.evaluate_reference(resource)
            assert param.expression.evaluate(resource) == expected, (param.code, resource["id"])
            compared += 1
            found += bool(expected)
    assert compared > 5000 and found > 1000
    # Every indexed expression takes the fast path (parenthesised `as` paths included).
    assert all(p.expression._flat is not None for pairs in reg.indexed_with_roots.values() for p, _ in pairs)


def test_indexing_only_the_parameters_a_resource_can_have_loses_no_row(shared_dir: Path) -> None:
    """index_rows skips parameters whose first element the resource lacks (a choice narrowed by
    `as` counts as one key: valueQuantity, not value*); evaluating every parameter gives the same."""
    from local_fhir.indexing import index_rows

    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:3]
    files += sorted((REPO / "resources" / "fhir" / "demo").glob("*.json"))
    resources = [e["resource"] for f in files for e in loads_exact(f.read_bytes())["entry"]]
    reg = registry()
    rows = 0
    for resource in resources:
        fast = index_rows(resource, reg)
        assert fast == index_rows(resource, reg, every_param=True), resource["id"]
        rows += sum(map(len, fast.values()))
    assert rows > 5000
    roots = reg.params("Observation")["value-quantity"].expression.first_elements()
    assert roots is not None and "valueQuantity" in roots and "valueString" not in roots
