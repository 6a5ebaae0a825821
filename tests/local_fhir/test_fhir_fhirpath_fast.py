"""The flat-path evaluator used for indexing agrees with the general recursive one."""

from __future__ import annotations

from pathlib import Path

from local_fhir.jsontext import loads_exact
from local_fhir.searchparams import registry


def test_fast_evaluation_matches_the_reference_evaluator(shared_dir: Path) -> None:
    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:3]
    resources = [e["resource"] for f in files for e in loads_exact(f.read_bytes())["entry"]]
    reg = registry()
    compared = found = 0
    for resource in resources:
        for param, _ in reg.indexed_with_roots.get(resource["resourceType"], ()):
            assert param.expression is not None
            fast = param.expression.evaluate(resource)
            assert fast == param.expression.evaluate_reference(resource), (param.code, resource["id"])
            compared += 1
            found += bool(fast)
    assert compared > 5000 and found > 1000
