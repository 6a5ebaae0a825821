"""Import inputs within limits (#16): a gzip bomb, an over-long NDJSON line and deeply nested JSON
are each refused for their own file (or line, with --lenient), with a message naming it; the
other files of the import carry on; nothing raises RecursionError or reads a bomb whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fhir_builders import patient

from local_fhir import Store, inputs
from local_fhir.cli import main
from local_fhir.importer import import_paths
from local_fhir.jsontext import MAX_DEPTH, TooDeep, loads, loads_exact
from local_fhir.verify import verify_file

MiB = 1024 * 1024


def _bomb(path: Path, mib: int = 64) -> Path:
    """`mib` MiB of blank lines of spaces, gzipped to ~1/1000 of that."""
    line = b" " * (MiB - 1) + b"\n"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(mib):
            fh.write(line)
    return path


def _ndjson(path: Path, resources: list[Any]) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _nested(depth: int, pid: str = "deep") -> dict[str, Any]:
    ext: dict[str, Any] = {"url": "http://example.org/e", "valueString": "leaf"}
    for _ in range(depth):
        ext = {"url": "http://example.org/e", "extension": [ext]}
    return {"resourceType": "Patient", "id": pid, "extension": [ext]}


# -- gzip --------------------------------------------------------------------------------------------
def test_a_gzip_bomb_is_refused_naming_the_file_and_the_rest_imports(store: Store, tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.ndjson.gz")
    assert bomb.stat().st_size < MiB // 4  # 64 MiB inside
    good = _ndjson(tmp_path / "good.ndjson.gz", [patient("p1", "Thompson")])
    for workers in (0, None):  # in process, and as the CLI runs it (the byte scan of the types first)
        report = import_paths(store, [bomb, good], workers=workers)
        by_name = {f.path.name: f for f in report.files}
        assert by_name["good.ndjson.gz"].ok and store.read("Patient", "p1")
        failed = by_name["bomb.ndjson.gz"]
        assert not failed.ok and "bomb.ndjson.gz" in (failed.error or "")
        assert "decompression bomb" in (failed.error or "")
        assert failed.outcome and failed.outcome["issue"][0]["code"] == "too-costly"


def test_the_bomb_is_never_expanded_whole(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.ndjson.gz")
    reader = inputs.CappedGzip(bomb)
    with pytest.raises(inputs.InputTooLarge, match=r"bomb\.ndjson\.gz: expands more than 200 times") as err:
        while reader.read(MiB):
            pass
    assert "decompression bomb" in str(err.value)
    assert reader.expanded < inputs.GZIP_RATIO_AFTER + 2 * MiB < 64 * MiB  # stopped at the ratio check
    reader.close()


def test_gzip_total_size_cap(tmp_path: Path) -> None:
    ordinary = _ndjson(tmp_path / "x.ndjson.gz", [patient(f"p{i}", "Thompson") for i in range(2000)])
    reader = inputs.CappedGzip(ordinary, max_bytes=50_000)
    with pytest.raises(inputs.InputTooLarge, match=r"x\.ndjson\.gz: expands to more than"):
        while reader.read(8192):
            pass
    reader.close()
    with inputs.open_input(ordinary) as fh:  # within the default limits it reads to its end
        assert fh.read().count(b"\n") == 2000


def test_validate_refuses_a_bomb(tmp_path: Path) -> None:
    result = verify_file(_bomb(tmp_path / "bomb.ndjson.gz"))
    assert not result["ok"] and "decompression bomb" in result["outcome"]["issue"][0]["diagnostics"]


# -- NDJSON line length --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["long.ndjson", "long.ndjson.gz"])
def test_an_over_long_ndjson_line_is_refused_with_its_number(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 4096)
    long_one = patient("p2", "X" * 10_000)
    path = _ndjson(tmp_path / name, [patient("p1", "A"), long_one, patient("p3", "C")])
    other = _ndjson(tmp_path / "other.ndjson", [patient("p9", "Other")])
    report = import_paths(store, [path, other], workers=0)
    refused, fine = report.files
    assert fine.ok and store.read("Patient", "p9")
    assert not refused.ok and "line 2 is longer than 4,096 bytes" in (refused.error or "")
    issue = refused.outcome["issue"][0] if refused.outcome else {}
    assert issue["code"] == "too-costly" and issue["expression"] == [f"{name}:2"]
    assert store.stats()["resources"] == 1  # the file is all or nothing
    # lenient: the other lines are stored, the long one quarantined by its line number
    lenient = import_paths(store, [path], workers=0, lenient=True).files[0]
    assert lenient.ok and lenient.resources == 2 and store.read("Patient", "p3")
    assert [q["source"] for q in lenient.quarantined] == [f"{path}: line 2"]
    assert "longer than" in lenient.quarantined[0]["first_problem"]


def test_lines_reads_past_an_over_long_line_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"short\n" + b"y" * 5000 + b"\nafter\r\n" + b"z" * 100 + b"\n" + b"last-no-newline")
    got = list(inputs.lines(path, max_line_bytes=100))
    assert got == [
        (1, b"short\n"),
        (2, None),
        (3, b"after\r\n"),
        (4, b"z" * 100 + b"\n"),
        (5, b"last-no-newline"),
    ]
    path.write_bytes(b"w" * 101)  # over the limit at the end of the file, without a line end
    assert list(inputs.lines(path, max_line_bytes=100)) == [(1, None)]


def test_validate_reports_an_over_long_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 4096)
    result = verify_file(_ndjson(tmp_path / "x.ndjson", [patient("p1", "A"), patient("p2", "X" * 10_000)]))
    assert not result["ok"] and result["resources"] == 2
    assert [i["expression"] for i in result["outcome"]["issue"]] == [["x.ndjson:2"]]


# -- deeply nested JSON ---------------------------------------------------------------------------
def test_depth_limit_when_parsing() -> None:
    assert loads_exact(json.dumps(_nested(MAX_DEPTH // 2 - 2)))
    with pytest.raises(TooDeep, match="nested more than 100"):
        loads_exact(json.dumps(_nested(MAX_DEPTH // 2)))
    for deep in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        with pytest.raises(TooDeep):
            loads_exact(deep)
    assert loads(json.dumps(_nested(60)))  # text the store wrote is not checked (nor slowed)


def test_deeply_nested_resources_refuse_their_file_and_the_import_goes_on(
    store: Store, tmp_path: Path
) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _nested(60, "b1")}]}
    deep_bundle = tmp_path / "a-deep.json"
    deep_bundle.write_text(json.dumps(bundle))
    bomb_bundle = tmp_path / "b-deeper.json"
    bomb_bundle.write_text('{"resourceType":"Bundle","type":"collection","entry":' + "[" * 200_000)
    lines = _ndjson(
        tmp_path / "c-lines.ndjson",
        [patient("n1", "A"), _nested(60, "n2"), "[" * 100_000, patient("n4", "D")],
    )
    good = tmp_path / "d-good.json"
    good.write_text(json.dumps(patient("p1", "Thompson")))
    for workers in (0, 2):
        report = import_paths(store, [deep_bundle, bomb_bundle, lines, good], workers=workers)
        a, b, c, d = report.files
        assert d.ok and store.read("Patient", "p1")
        for refused in (a, b):
            assert not refused.ok and "nested more than 100" in (refused.error or ""), refused.error
            assert refused.outcome and refused.outcome["issue"][0]["code"] == "too-costly"
        assert not c.ok and c.outcome
        assert [(i["expression"], i["code"]) for i in c.outcome["issue"]] == [
            (["c-lines.ndjson:2"], "too-costly"), (["c-lines.ndjson:3"], "too-costly")]  # fmt: skip
    lenient = import_paths(store, [lines], workers=0, lenient=True).files[0]
    assert lenient.ok and lenient.resources == 2 and len(lenient.quarantined) == 2


def test_cli_import_and_validate_of_nested_json(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"resourceType":"Patient","extension":' + '[{"url":"http://example.org/e","extension":' * 5000
                    + '[{"url":"http://example.org/e","valueString":"leaf"}]' + "}]" * 5000 + "}")  # fmt: skip
    good = tmp_path / "good.json"
    good.write_text(json.dumps(patient("p1", "Thompson")))
    db = tmp_path / "fhir.sqlite3"
    runner = CliRunner()
    result = runner.invoke(main, ["import", "--db", str(db), str(deep), str(good)])
    assert result.exit_code == 1 and not isinstance(result.exception, RecursionError)
    assert "FAILED" in result.output and "nested more than 100" in result.output
    with Store(db) as store:
        assert store.read("Patient", "p1")
    checked = runner.invoke(main, ["validate", str(deep)])
    assert checked.exit_code == 1 and "nested more than 100" in checked.output


def test_json_file_size_cap(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_JSON_FILE_BYTES", 1000)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(patient("p1", "X" * 2000)))
    result = import_paths(store, [big], workers=0).files[0]
    assert not result.ok and "big.json: larger than" in (result.error or "")
