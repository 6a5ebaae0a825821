"""Import: NDJSON (plain and gzip), bad files, and all 50 shared Synthea bundles."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from fhir_builders import observation, patient

from local_fhir import Store
from local_fhir.importer import import_file
from local_fhir.indexing import TABLES


def test_ndjson_plain_and_gzip(store: Store, tmp_path: Path) -> None:
    lines = [json.dumps(patient(f"p{i}", f"Name{i}")) for i in range(5)]
    (tmp_path / "Patient.ndjson").write_text("\n".join(lines) + "\n")
    obs = [json.dumps(observation(f"o{i}", f"Patient/p{i}", "1", "2024-01-01")) for i in range(5)]
    with gzip.open(tmp_path / "Observation.ndjson.gz", "wt") as fh:
        fh.write("\n".join(obs) + "\n\n")
    progress = []
    report = store.import_paths([tmp_path], on_progress=progress.append)
    assert report.ok, report.to_dict()
    assert report.resources == 10
    assert {f.path.name: f.by_type for f in report.files} == {
        "Observation.ndjson.gz": {"Observation": 5},
        "Patient.ndjson": {"Patient": 5},
    }
    assert progress[-1].bytes_done == progress[-1].bytes_total
    assert store.search("Observation", {"patient": "p3"})["total"] == 1


def test_bad_file_is_reported_and_others_continue(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a_good.ndjson").write_text(json.dumps(patient("p1", "Good")) + "\n")
    bad_lines = [
        json.dumps(patient("p2", "Fine")),
        json.dumps({"resourceType": "Patient", "name": "Smith"}),
        "{not json",
        json.dumps({"resourceType": "Patient", "birthDate": "x"}),
        json.dumps({"resourceType": "DetectedIssue", "status": "final", "severity": "high"}),  # valid
    ]
    (tmp_path / "b_bad.ndjson").write_text("\n".join(bad_lines) + "\n")
    (tmp_path / "c_broken.json").write_text('{"resourceType": "Bundle", "type": "transaction", "entry": [')
    (tmp_path / "d_gz.ndjson.gz").write_bytes(b"not gzip at all")
    report = store.import_paths([tmp_path, tmp_path / "missing.json"])
    assert not report.ok
    by_name = {f.path.name: f for f in report.files}
    assert by_name["a_good.ndjson"].ok
    bad = by_name["b_bad.ndjson"]
    assert not bad.ok and bad.resources == 0
    where = [i["expression"][0] for i in bad.outcome["issue"]]
    lines = [int(w.split(":")[1].split(".")[0]) for w in where]
    assert lines == [2, 3, 4] and lines == sorted(lines)  # in line order, whatever the problem
    assert "b_bad.ndjson:3" in where and where[0].startswith("b_bad.ndjson:2.Patient.name")
    assert not by_name["c_broken.json"].ok and "JSON" in by_name["c_broken.json"].error
    assert not by_name["d_gz.ndjson.gz"].ok
    assert "does not exist" in by_name["missing.json"].error
    # nothing from a failed file was written
    assert sorted(store.stats()["by_type"].items()) == [("Patient", 1)]


def test_collection_bundle_keeps_ids(store: Store, tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:aaa", "resource": patient("keep-me", "Kept")},
        {"resource": observation("o1", "urn:uuid:aaa", "1")},
    ]}  # fmt: skip
    path = tmp_path / "c.json"
    path.write_text(json.dumps(bundle))
    assert store.import_paths([path]).ok
    assert store.read("Observation", "o1")["subject"]["reference"] == "Patient/keep-me"


@pytest.fixture(scope="module")
def synthea(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> tuple[Store, Path]:
    src = shared_dir / "data" / "synthea-r4"
    store = Store(tmp_path_factory.mktemp("synthea") / "fhir.sqlite3")
    report = store.import_paths([src])
    assert report.ok, [f.to_dict() for f in report.failed]
    yield store, src
    store.close()


def test_all_synthea_bundles_import_with_matching_counts(synthea: tuple[Store, Path]) -> None:
    store, src = synthea
    files = sorted(src.glob("*.json"))
    assert len(files) == 50
    distinct: set[tuple[str, str]] = set()
    entries = 0
    for path in files:
        for entry in json.loads(path.read_text())["entry"]:
            distinct.add((entry["resource"]["resourceType"], entry["resource"]["id"]))
            entries += 1
    expected = Counter(rtype for rtype, _ in distinct)
    stats = store.stats()
    assert stats["by_type"] == dict(sorted(expected.items()))
    assert stats["resources"] == len(distinct)
    # shared Organizations/Practitioners appear in several files but stay one version each
    assert stats["versions"] == len(distinct)
    assert entries == 13172


def test_synthea_references_were_rewritten_and_resolve(synthea: tuple[Store, Path]) -> None:
    store, _ = synthea
    conn = store._conn()
    assert conn.execute("SELECT count(*) FROM idx_reference WHERE url LIKE 'urn:uuid:%'").fetchone()[0] == 0
    patients = [e["resource"]["id"] for e in store.search("Patient", {"_count": "100"})["entry"]]
    total = sum(store.search("Observation", {"patient": p, "_summary": "count"})["total"] for p in patients)
    assert total == store.stats()["by_type"]["Observation"]


def test_synthea_patient_compartment(synthea: tuple[Store, Path]) -> None:
    store, src = synthea
    path = sorted(src.glob("*.json"))[3]
    entries = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    pid = next(r["id"] for r in entries if r["resourceType"] == "Patient")
    shared_types = {"Organization", "Practitioner", "Location", "PractitionerRole"}
    expected = {(r["resourceType"], r["id"]) for r in entries if r["resourceType"] not in shared_types}
    got = store.patient_compartment(pid)
    assert got[0]["resourceType"] == "Patient" and got[0]["id"] == pid
    assert {(r["resourceType"], r["id"]) for r in got} == expected
    assert len(got) == len(expected)


def test_synthea_patient_context_queries(synthea: tuple[Store, Path]) -> None:
    store, _ = synthea
    pid = store.search("Patient", {"_count": "1"})["entry"][0]["resource"]["id"]
    labs = store.search(
        "Observation", {"patient": pid, "category": "laboratory", "_sort": "-date", "_count": "20"}
    )
    dates = [e["resource"]["effectiveDateTime"] for e in labs["entry"]]
    assert dates == sorted(dates, reverse=True)
    assert all(
        any(c["code"] == "laboratory" for cat in e["resource"]["category"] for c in cat["coding"])
        for e in labs["entry"]
    )
    active = store.search("Condition", {"patient": pid, "clinical-status": "active"})
    for e in active["entry"]:
        assert e["resource"]["clinicalStatus"]["coding"][0]["code"] == "active"


def test_worker_processes_store_exactly_what_in_process_import_stores(
    tmp_path: Path, shared_dir: Path
) -> None:
    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:3]
    results = []
    for workers in (0, 2):
        with Store(tmp_path / f"w{workers}.sqlite3") as store:
            assert store.import_paths(files, workers=workers).ok
            conn = store._conn()
            texts = conn.execute("SELECT rtype, id, json FROM resources ORDER BY rtype, id").fetchall()
            index = {
                t: conn.execute(f"SELECT count(*) FROM idx_{t}").fetchone()[0]
                for t in ("token", "date", "reference")
            }
            # lastUpdated differs between the two runs; everything else must be identical
            results.append(([(r, i, json.loads(j) | {"meta": None}) for r, i, j in texts], index))
    assert results[0] == results[1]


def _index_snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every index row, keyed by (type, id) instead of the row id, in a stable order."""
    conn = store._conn()
    out = {}
    for table in TABLES:
        rows = conn.execute(
            f"SELECT r.rtype, r.id, x.* FROM idx_{table} x JOIN resources r ON r.rid = x.rid"
        ).fetchall()
        out[table] = sorted((row[:2] + row[3:] for row in rows), key=repr)  # drop x.rid
    return out


def test_bulk_import_writes_the_same_rows_as_the_transaction_path(tmp_path: Path, shared_dir: Path) -> None:
    """The fast bulk path (prepare in workers, batched writes) against the straightforward one: each
    file as a transaction through `apply_transaction`, resource by resource."""
    files = sorted((shared_dir / "data" / "synthea-r4").glob("*.json"))[:4]
    with Store(tmp_path / "fast.sqlite3") as fast, Store(tmp_path / "plain.sqlite3") as plain:
        assert fast.import_paths(files, workers=2).ok
        for f in files:
            assert import_file(plain, f).ok
        assert _index_snapshot(fast) == _index_snapshot(plain)
        assert sum(len(rows) for rows in _index_snapshot(fast).values()) > 1000
        query = "SELECT rtype, id, version, deleted, json FROM resources ORDER BY rtype, id"
        fast_rows, plain_rows = (
            fast._conn().execute(query).fetchall(),
            plain._conn().execute(query).fetchall(),
        )
        assert [r[:4] for r in fast_rows] == [r[:4] for r in plain_rows]
        # The stored texts differ only in meta.lastUpdated.
        strip = re.compile(r'"lastUpdated":"[^"]*"')
        assert [strip.sub("", r[4]) for r in fast_rows] == [strip.sub("", r[4]) for r in plain_rows]


def _big_ndjson(path: Path, n: int, bad_lines: dict[int, str] | None = None) -> None:
    """n Observations (plus a patient) as gzip NDJSON; `bad_lines` replaces lines by number (1-based)."""
    lines = [json.dumps(patient("pbig", "Big"))]
    lines += [json.dumps(observation(f"o{i}", "Patient/pbig", str(i % 7), f"2024-01-{i % 28 + 1:02d}"))
              for i in range(n)]  # fmt: skip
    for number, text in (bad_lines or {}).items():
        lines[number - 1] = text
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def test_a_big_ndjson_file_shared_among_workers_stores_what_one_process_stores(tmp_path: Path) -> None:
    from local_fhir.importer import NDJSON_CHUNK_LINES

    path = tmp_path / "big.ndjson.gz"
    _big_ndjson(path, 3 * NDJSON_CHUNK_LINES + 17)  # several pieces and a short last one
    with Store(tmp_path / "w0.sqlite3") as serial, Store(tmp_path / "w2.sqlite3") as shared:
        progress: list = []
        one, two = (
            serial.import_paths([path], workers=0),
            shared.import_paths([path], workers=2, on_progress=progress.append),
        )
        assert one.ok and two.ok
        assert [f.to_dict() for f in one.files] == [f.to_dict() for f in two.files]  # one result per file
        assert two.resources == 3 * NDJSON_CHUNK_LINES + 18
        # Progress moves within the file, piece by piece, and ends at its size.
        done = [p.bytes_done for p in progress]
        assert len(done) == 4 and done == sorted(done) and done[-1] == path.stat().st_size
        assert [p.resources_done for p in progress] == [NDJSON_CHUNK_LINES * k for k in (1, 2, 3)] + [
            two.resources
        ]
        assert _index_snapshot(serial) == _index_snapshot(shared)


def test_a_bad_line_in_a_later_piece_refuses_the_whole_file_listing_every_problem(
    store: Store, tmp_path: Path
) -> None:
    from local_fhir.importer import NDJSON_CHUNK_LINES

    path = tmp_path / "bad.ndjson.gz"
    late, later = 2 * NDJSON_CHUNK_LINES + 3, 3 * NDJSON_CHUNK_LINES + 1
    _big_ndjson(
        path,
        3 * NDJSON_CHUNK_LINES + 5,
        {late: "{not json", later: '{"resourceType": "Patient", "birthDate": "x"}'},
    )
    (tmp_path / "good.ndjson").write_text(json.dumps(patient("pgood", "Good")) + "\n")
    report = store.import_paths([path, tmp_path / "good.ndjson"], workers=2)
    bad, good = report.files
    assert not bad.ok and bad.resources == 0 and good.ok
    where = [i["expression"][0] for i in bad.outcome["issue"]]
    assert f"bad.ndjson.gz:{late}" in where and any(w.startswith(f"bad.ndjson.gz:{later}") for w in where)
    assert bad.error.startswith(f"{len(where)} problem(s)")
    assert store.stats()["by_type"] == {"Patient": 1}  # nothing of the refused file


def test_a_gzip_cut_short_mid_file_fails_that_file_only(store: Store, tmp_path: Path) -> None:
    from local_fhir.importer import NDJSON_CHUNK_LINES

    whole = tmp_path / "whole.ndjson.gz"
    _big_ndjson(whole, 4 * NDJSON_CHUNK_LINES)
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])  # pieces read, then EOF
    (tmp_path / "good.ndjson").write_text(json.dumps(patient("pgood", "Good")) + "\n")
    report = store.import_paths([cut, tmp_path / "good.ndjson"], workers=2)
    broken, good = report.files
    assert not broken.ok and "EOFError" in broken.error and good.ok
    assert store.stats()["by_type"] == {"Patient": 1}


def test_the_parallel_threshold_counts_a_gzip_file_as_the_json_it_holds(tmp_path: Path) -> None:
    from local_fhir.importer import _data_bytes

    path = tmp_path / "big.ndjson.gz"
    _big_ndjson(path, 2000)
    with gzip.open(path, "rb") as fh:
        assert _data_bytes(path) == len(fh.read()) > 10 * path.stat().st_size


def test_a_store_error_mid_file_rolls_that_file_back_and_the_next_file_still_imports(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local_fhir import StoreUnavailable
    from local_fhir.importer import NDJSON_CHUNK_LINES

    big = tmp_path / "a_big.ndjson.gz"
    _big_ndjson(big, 3 * NDJSON_CHUNK_LINES)
    (tmp_path / "b_next.ndjson").write_text(json.dumps(patient("pnext", "Next")) + "\n")
    put, calls = Store._put_prepared, []

    def failing(self: Store, conn, item, pending, if_match=None, absent=None):  # type: ignore[no-untyped-def]
        calls.append(item.id)
        if len(calls) == NDJSON_CHUNK_LINES + 10:  # inside the file's second piece
            raise StoreUnavailable("disk I/O error")
        return put(self, conn, item, pending, if_match, absent)

    monkeypatch.setattr(Store, "_put_prepared", failing)
    report = store.import_paths([big, tmp_path / "b_next.ndjson"], workers=2)
    failed, nxt = report.files
    assert not failed.ok and "disk I/O error" in failed.error
    assert nxt.ok and nxt.path.name == "b_next.ndjson" and nxt.by_type == {"Patient": 1}
    assert store.stats()["by_type"] == {"Patient": 1}  # the big file left nothing behind


def test_a_resource_repeated_in_one_file_or_already_stored_becomes_a_new_version(
    store: Store, tmp_path: Path
) -> None:
    """The bulk writer looks up a piece's ids in one query; a repeat within the piece, and a
    resource the store already holds, must still find the earlier row (a new version, no clash)."""
    store.update(patient("p1", "Stored"))
    lines = [patient("p1", "First"), patient("p2", "Once"), patient("p3", "New"), patient("p1", "Second"),
             patient("p2", "Once"), patient("p3", "Newer")]  # fmt: skip
    (tmp_path / "Patient.ndjson").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    report = import_file(store, tmp_path / "Patient.ndjson")
    assert report.ok, report.to_dict()
    assert store.read("Patient", "p1")["name"][0]["family"] == "Second"
    versions = [e["resource"]["name"][0]["family"] for e in store.history("Patient", "p1")["entry"]]
    assert sorted(versions) == ["First", "Second", "Stored"]
    assert store.read("Patient", "p1")["meta"]["versionId"] == "3"
    assert store.read("Patient", "p2")["meta"]["versionId"] == "1"  # identical content: no new version
    assert (
        store.read("Patient", "p3")["meta"]["versionId"],
        store.read("Patient", "p3")["name"][0]["family"],
    ) == ("2", "Newer")  # new to the store, twice in the piece: the second sees the first
    assert store.search("Patient", {"family": "second"})["total"] == 1
    assert store.search("Patient", {"family": "first"})["total"] == 0  # old index rows replaced
