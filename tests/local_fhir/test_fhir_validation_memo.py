"""The validation memo (local_fhir.validation) changes speed, never results: every resource gets the
same structure problems, with the same paths, as an unmemoised fhir.resources validation gives."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from local_fhir import validation
from local_fhir.jsontext import loads_exact


def _resources(shared_dir: Path, files: int = 3) -> list[dict[str, Any]]:
    out = []
    for path in sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:files]:
        out += [e["resource"] for e in loads_exact(path.read_bytes())["entry"]]
    return out


@pytest.fixture(scope="module")
def resources(shared_dir: Path) -> list[dict[str, Any]]:
    found = _resources(shared_dir)
    for resource in found:  # warm the memo with every valid element of these files
        assert validation.problems(resource) == [], resource["resourceType"]
    return found


def _unmemoised(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of each problem, from fhir.resources without the memo (it is off outside
    `problems()`)."""
    rtype = resource["resourceType"]
    try:
        validation._model(rtype).model_validate(resource)
    except ValidationError as exc:
        return [(validation._path(rtype, tuple(e["loc"])), e["msg"]) for e in exc.errors()]
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # named as structure_errors names a failure outside pydantic's error model
        return [(rtype, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")]
    return []


def _memoised(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The same from the memoised step `problems()` runs (after its own R4 JSON checks)."""
    rtype = resource["resourceType"]
    found = validation.structure_errors(resource, validation._model(rtype))
    return [(validation._path(rtype, loc) if loc else rtype, message) for loc, message, _ in found]


def test_memo_is_installed_and_used(resources: list[dict[str, Any]]) -> None:
    # Guards the speed path: a fhir_core upgrade that drops the hook must be noticed here.
    assert validation.memo_installed()
    hits = validation.memo_stats["hits"]
    for resource in resources[:50]:
        validation.problems(resource)
    assert validation.memo_stats["hits"] > hits


def test_memo_shares_nothing_outside_validation(resources: list[dict[str, Any]]) -> None:
    from fhir.resources.R4B.observation import Observation

    obs = next(r for r in resources if r["resourceType"] == "Observation")
    first, second = Observation.model_validate(obs), Observation.model_validate(obs)
    assert first.code is not second.code  # callers get their own objects, as without the memo


_JUNK = st.one_of(
    st.none(),
    st.just([None]),
    st.just({}),
    st.just({"unknownElement": 1}),
    st.just("not-a-date"),
    st.just("  "),
    st.integers(-5, 5),
    st.just(Decimal("1.5")),
    st.booleans(),
    st.just([{"system": 12}]),
    st.just({"reference": 5}),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in ("resourceType", "id"):
                out.append((*prefix, key))
                out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.append((*prefix, i))
            out += _paths(item, (*prefix, i))
    return out


# derandomize: the same examples on every run, so a CI run never meets an example no run before met.
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_elements_give_the_same_problems(
    resources: list[dict[str, Any]], data: st.DataObject
) -> None:
    resource = copy.deepcopy(data.draw(st.sampled_from(resources)))
    paths = _paths(resource)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = resource
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = data.draw(_JUNK)
        except (KeyError, IndexError, TypeError):  # an earlier corruption removed the path
            continue
    expected = _unmemoised(resource)
    assert _memoised(resource) == expected
    # And again, now that any element this resource shares with others may be remembered.
    assert _memoised(resource) == expected


def test_every_valid_resource_stays_valid_and_repeats_are_stable(resources: list[dict[str, Any]]) -> None:
    twice = [_memoised(r) for r in resources] + [_memoised(r) for r in resources]
    assert all(found == [] for found in twice)
    # An element seen valid elsewhere, now holding a bad value, is validated again, not remembered.
    obs = copy.deepcopy(next(r for r in resources if "valueQuantity" in r))
    assert _memoised(obs) == []
    obs["valueQuantity"]["value"] = "five"
    assert _memoised(obs) == _unmemoised(obs) != []
    assert json.dumps(_memoised(obs))  # plain data, printable in an OperationOutcome
