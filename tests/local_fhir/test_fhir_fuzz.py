"""Property-based fuzzing: any search string or Bundle gives a result or a clear error, never a
crash, and a refused transaction writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir_builders import observation, patient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_fhir import FhirStoreError, Store
from local_fhir.searchparams import registry

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("fuzz") / "fhir.sqlite3")
    store.create(patient("p1", "Thompson", birthDate="1950-01-02"))
    store.create(
        observation(
            "o1", "Patient/p1", "2339-0", "2024-01-01", valueQuantity={"value": 5.4, "unit": "mmol/L"}
        )
    )
    return store


_names = st.sampled_from(sorted(registry().params("Observation")) + ["_id", "_lastUpdated", "_sort", "_count",
                                                                     "_include", "_revinclude", "_summary", "bogus"])  # fmt: skip
_modifiers = st.sampled_from(["", ":missing", ":exact", ":contains", ":text", ":not", ":Patient", ":below", ":in", ".name", ":Patient.birthdate"])  # fmt: skip
_prefixes = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"])
_values = st.one_of(
    st.text(max_size=30),
    st.from_regex(
        r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?",
        fullmatch=True,
    ),
    st.from_regex(
        r"-?[0-9]{1,6}(\.[0-9]{1,4})?([eE][-+]?[0-9]{1,3})?(\|[a-z:/.]{0,12}\|[a-zA-Z/]{0,6})?",
        fullmatch=True,
    ),
    st.sampled_from(
        [
            "Patient/p1",
            "p1",
            "http://loinc.org|2339-0",
            "|2339-0",
            "true",
            "Observation:subject",
            "-date,_id",
            "count",
        ]
    ),
)


@SETTINGS
@given(st.lists(st.tuples(_names, _modifiers, _prefixes, _values), max_size=4))
def test_structured_search_never_crashes(seeded: Store, params: list[tuple[str, str, str, str]]) -> None:
    query = [(f"{n}{m}", f"{p}{v}") for n, m, p, v in params]
    try:
        bundle = seeded.search("Observation", query)
    except FhirStoreError as exc:
        assert str(exc) and exc.outcome["issue"][0]["diagnostics"]
        return
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"


@SETTINGS
@given(st.text(max_size=80))
def test_raw_query_strings_never_crash(seeded: Store, query: str) -> None:
    try:
        seeded.search("Patient", query)
    except FhirStoreError as exc:
        assert exc.outcome["resourceType"] == "OperationOutcome"


def _entry(kind: str, i: int, value: Any) -> dict[str, Any]:
    if kind == "patient":
        return {"fullUrl": f"urn:uuid:p{i}", "resource": {"resourceType": "Patient", "name": [{"family": str(value)}]},
                "request": {"method": "POST", "url": "Patient"}}  # fmt: skip
    if kind == "observation":
        obs = observation("x", f"urn:uuid:p{value % 3}", "1", "2024-01-01")
        del obs["id"]
        return {
            "fullUrl": f"urn:uuid:o{i}",
            "resource": obs,
            "request": {"method": "POST", "url": "Observation"},
        }
    if kind == "bad-date":
        return {
            "resource": {"resourceType": "Patient", "birthDate": str(value)},
            "request": {"method": "POST", "url": "Patient"},
        }
    if kind == "put":
        return {
            "resource": patient(f"put{value % 4}", "P"),
            "request": {"method": "PUT", "url": f"Patient/put{value % 4}"},
        }
    if kind == "delete":
        return {"request": {"method": "DELETE", "url": f"Patient/put{value % 4}"}}
    if kind == "conditional":
        return {
            "resource": observation("c", "Patient?name=thompson", "1"),
            "request": {"method": "POST", "url": "Observation"},
        }
    return {"request": {"method": str(value)[:6], "url": str(value)}}  # garbage


_entries = st.lists(
    st.tuples(
        st.sampled_from(["patient", "observation", "bad-date", "put", "delete", "conditional", "garbage"]),
        st.one_of(st.integers(0, 20), st.text(max_size=8)),
    ),  # fmt: skip
    max_size=6,
)


@SETTINGS
@given(_entries)
def test_transactions_are_all_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, Any]]
) -> None:
    store = Store(Path(tmp_path_factory.mktemp("tx")) / "fhir.sqlite3")
    try:
        store.create(patient("p-existing", "Thompson"))
        before = store.stats()
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [_entry(kind, i, v if isinstance(v, int) or kind in ("bad-date", "garbage") else 0)
                            for i, (kind, v) in enumerate(entries)]}  # fmt: skip
        try:
            response = store.process_bundle(bundle)
        except FhirStoreError as exc:
            assert exc.outcome["issue"]
            after = store.stats()
            assert (after["resources"], after["versions"], after["index_rows"]) == (
                before["resources"], before["versions"], before["index_rows"],
            )  # fmt: skip
            return
        assert len(response["entry"]) == len(bundle["entry"])
    finally:
        store.close()


@SETTINGS
@given(_entries)
def test_batches_report_every_entry(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, Any]]
) -> None:
    store = Store(Path(tmp_path_factory.mktemp("batch")) / "fhir.sqlite3")
    try:
        bundle = {"resourceType": "Bundle", "type": "batch",
                  "entry": [_entry(kind, i, v if isinstance(v, int) or kind in ("bad-date", "garbage") else 0)
                            for i, (kind, v) in enumerate(entries)]}  # fmt: skip
        try:
            response = store.process_bundle(bundle)
        except FhirStoreError as exc:  # a structurally broken bundle is refused as a whole
            assert exc.outcome["issue"]
            assert store.stats()["resources"] == 0
            return
        assert len(response["entry"]) == len(bundle["entry"])
        for entry in response["entry"]:
            assert entry["response"]["status"][:3].isdigit()
    finally:
        store.close()
