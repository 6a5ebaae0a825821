"""Hypothesis over the JSON types of primitives, per FHIR element type: a valid value is accepted
and stored unchanged (its JSON text included); a value of the wrong JSON type is refused, at its
path, with nothing written. Deterministic (derandomize, no example database) and small."""

from __future__ import annotations

import base64
import json
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_fhir import Store, UnprocessableResource
from local_fhir.jsontext import dumps, loads_exact

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_int32 = st.integers(-(2**31), 2**31 - 1)
_text = st.text(alphabet=string.ascii_letters + string.digits + " .-_/é", min_size=1, max_size=20).filter(str.strip)
_token = st.text(alphabet=string.ascii_letters + string.digits + "-.", min_size=1, max_size=20)
_dates = st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}").filter(lambda s: not s.startswith("0000"))
_times = st.times().map(lambda t: t.strftime("%H:%M:%S"))
_instants = st.tuples(_dates, _times).map(lambda p: f"{p[0]}T{p[1]}Z")
_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6)

# Extension.value[x] name -> valid JSON values of that FHIR type
VALID: dict[str, st.SearchStrategy[Any]] = {
    "valueBoolean": st.booleans(),
    "valueInteger": _int32,
    "valueUnsignedInt": st.integers(0, 2**31 - 1),
    "valuePositiveInt": st.integers(1, 2**31 - 1),
    "valueDecimal": st.one_of(_decimals, st.integers(-(10**9), 10**9)),
    "valueString": _text,
    "valueMarkdown": _text,
    "valueCode": _token,
    "valueId": _token,
    "valueUri": st.from_regex(r"urn:[a-z]{1,8}:[a-z0-9]{1,12}", fullmatch=True),
    "valueUrl": st.from_regex(r"https://example\.org/[a-z0-9]{1,12}", fullmatch=True),
    "valueCanonical": st.from_regex(r"http://example\.org/fhir/[A-Za-z]{1,12}", fullmatch=True),
    "valueOid": st.from_regex(r"urn:oid:1\.2(\.[1-9][0-9]{0,3}){1,4}", fullmatch=True),
    "valueUuid": st.uuids().map(lambda u: f"urn:uuid:{u}"),
    "valueBase64Binary": st.binary(min_size=1, max_size=30).map(lambda b: base64.b64encode(b).decode()),
    "valueDate": _dates,
    "valueDateTime": st.one_of(_dates, _instants),
    "valueInstant": _instants,
    "valueTime": _times,
}
_NUMBER_TYPES = {"valueInteger", "valueUnsignedInt", "valuePositiveInt", "valueDecimal"}


def _wrong(element: str) -> st.SearchStrategy[Any]:
    """Values whose JSON type is not the element's (all but null and containers: refused too)."""
    strings = st.one_of(_int32.map(str), st.sampled_from(["true", "false", "+42", "9.2", "1e3"]))
    if element == "valueBoolean":
        return st.one_of(strings, _int32, _decimals)
    if element in _NUMBER_TYPES:
        wrong = st.one_of(strings, st.booleans())
        if element != "valueDecimal":
            wrong = st.one_of(wrong, _decimals.filter(lambda d: d != d.to_integral_value()))
        return wrong
    return st.one_of(st.booleans(), _int32, _decimals, st.just(""))


def _patient(element: str, value: Any, pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid,
            "extension": [{"url": "http://example.org/fhir/StructureDefinition/probe", element: value}]}  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("r4fuzz") / "fhir.sqlite3")


@pytest.mark.parametrize("element", sorted(VALID))
def test_valid_values_are_stored_unchanged(db: Store, element: str) -> None:
    @SETTINGS
    @given(value=VALID[element], n=st.integers(0, 10**9))
    def check(value: Any, n: int) -> None:
        sent = _patient(element, value, f"{element}-{n}")
        db.update(json.loads(dumps(sent), parse_float=Decimal))  # as a file or request would give it
        text = db.read_text("Patient", sent["id"])
        kept = loads_exact(text)
        assert kept["extension"] == sent["extension"]
        assert type(kept["extension"][0][element]) is type(sent["extension"][0][element]) or element == "valueDecimal"
        assert dumps(sent["extension"]) in text  # the same JSON text, digits and all

    check()


@pytest.mark.parametrize("element", sorted(VALID))
def test_values_of_the_wrong_json_type_are_refused(db: Store, element: str) -> None:
    @SETTINGS
    @given(value=_wrong(element))
    def check(value: Any) -> None:
        before = db.stats()["versions"]
        with pytest.raises(UnprocessableResource) as err:
            db.create(_patient(element, value, "refused"))
        expressions = [i["expression"][0] for i in err.value.outcome["issue"]]
        assert expressions == [f"Patient.extension[0].{element}"], expressions
        assert db.stats()["versions"] == before

    check()


@SETTINGS
@given(
    element=st.sampled_from(sorted(VALID)),
    container=st.sampled_from([None, [], {}, [None]]),
)
def test_null_and_empty_containers_are_refused(db: Store, element: str, container: Any) -> None:
    before = db.stats()["versions"]
    with pytest.raises(UnprocessableResource) as err:
        db.create(_patient(element, container, "refused"))
    assert err.value.outcome["issue"][0]["expression"][0].startswith(f"Patient.extension[0].{element}")
    assert db.stats()["versions"] == before


def test_an_import_refuses_what_create_refuses(tmp_path: Path) -> None:
    lines = [_patient("valueInteger", "42", "a"), _patient("valueBoolean", 1, "b"), _patient("valueDecimal", "9.2", "c")]
    (tmp_path / "bad.ndjson").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with Store(tmp_path / "fhir.sqlite3") as store:
        report = store.import_paths([tmp_path / "bad.ndjson"])
        assert not report.ok and store.stats()["resources"] == 0
        where = [i["expression"][0] for i in report.files[0].outcome["issue"]]
        assert where == ["bad.ndjson:1.Patient.extension[0].valueInteger", "bad.ndjson:2.Patient.extension[0].valueBoolean",
                         "bad.ndjson:3.Patient.extension[0].valueDecimal"]  # fmt: skip
