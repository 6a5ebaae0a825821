"""local_fhir.jsontext (msgspec) reads and writes exactly what the standard json module would, with
decimals kept as written, and refuses what cannot be JSON instead of writing something else."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from local_fhir.jsontext import dumps, loads, loads_exact

REPO = Path(__file__).resolve().parents[2]


def test_bundled_dataset_round_trips_as_the_json_module_reads_it() -> None:
    lines = gzip.decompress((REPO / "resources/fhir/population.ndjson.gz").read_bytes()).decode().splitlines()
    assert len(lines) > 10_000
    for line in lines:
        exact = loads_exact(line)
        assert exact == json.loads(line, parse_float=Decimal)
        assert list(exact) == list(json.loads(line))  # key order kept
        text = dumps(exact)
        assert json.loads(text, parse_float=Decimal) == exact
        assert loads(text) == json.loads(line)


def test_decimals_are_written_with_the_digits_they_were_read_with() -> None:
    text = '{"v":87.940,"w":1E+5,"x":-0.0,"y":12345678901234567890,"z":0.000001,"n":[1.10,2]}'
    assert dumps(loads_exact(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"\\u0000x\\u001f\\u2028é\\"\\\\/","b":[null,"x"],"c":true}',
        '{ "name": [{"family": "Ó Súilleabháin", "given": ["Siobhán"]}], "n": 3 }',
    ],
)
def test_text_out_equals_the_json_module(text: str) -> None:
    expected = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    assert dumps(loads_exact(text)) == expected


def test_utf8_bom_from_windows_tools_is_accepted() -> None:
    assert loads_exact(b'\xef\xbb\xbf{"resourceType":"Patient"}') == {"resourceType": "Patient"}


@pytest.mark.parametrize("text", ["", "{", '{"a":NaN}', '{"a":1} x', "[1,]"])
def test_malformed_json_is_a_value_error_that_says_where(text: str) -> None:
    with pytest.raises(ValueError, match="not valid JSON: (Input data was truncated|JSON is malformed)"):
        loads_exact(text)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_non_finite_numbers_are_refused_not_written_as_null(bad: object) -> None:
    with pytest.raises(ValueError, match="NaN and infinite"):
        dumps({"valueQuantity": {"value": bad}, "note": [None]})


def test_a_text_that_merely_mentions_nan_is_written() -> None:
    assert dumps({"text": "NaN Infinity null"}) == '{"text":"NaN Infinity null"}'
