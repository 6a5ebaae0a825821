"""Benchmark local_fhir: import throughput and the EHR agent's patient-context query latency.

    .venv/bin/python bench/fhir.py [--synthea ../shared/data/synthea-r4] [--scale-to 100000]

Prints one JSON document. Import is measured with validation and indexing, on:
  - the bundled dataset the app loads on first start (resources/fhir), imported --runs times into
    fresh databases (median and best: this machine's speed varies from run to run by ±15%);
  - the same dataset scaled to at least --scale-to resources (copies with fresh ids);
  - the 50 raw Synthea bundles it was derived from, billing resources (Claim,
    ExplanationOfBenefit: 1-3 ms each to validate) included, for comparison.
A baseline (json.loads plus a plain SQLite insert, no validation, no indexes) is measured on the
same files in the same run, for ratios. Queries run on the bundled and on the scaled database.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# This file is named fhir.py: keep its folder off sys.path so `import fhir.resources` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from local_fhir import Store  # noqa: E402

QUERIES = {
    "active_conditions": ("Condition", "patient={p}&clinical-status=active"),
    "active_medications": ("MedicationRequest", "patient={p}&status=active"),
    "allergies": ("AllergyIntolerance", "patient={p}"),
    "latest_labs": ("Observation", "patient={p}&category=laboratory&_sort=-date&_count=20"),
    "diagnostic_reports": ("DiagnosticReport", "patient={p}&_sort=-date&_count=5"),
    "recent_encounters": ("Encounter", "patient={p}&_sort=-date&_count=3"),
    "documents": ("DocumentReference", "patient={p}&_sort=-date"),
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_resources(path: Path) -> list[dict[str, Any]]:
    """The resources of a Bundle (.json) or an NDJSON file (.ndjson, .ndjson.gz)."""
    if path.name.endswith((".ndjson", ".ndjson.gz")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            return [json.loads(line) for line in fh if line.strip()]
    doc = json.loads(path.read_bytes())
    return [e["resource"] for e in doc.get("entry", [])] if doc.get("resourceType") == "Bundle" else [doc]


def baseline_insert(files: list[Path], db: Path) -> dict[str, Any]:
    """json.loads + one plain INSERT per resource, one transaction per file: no validation, no index."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE r (rtype TEXT, id TEXT, json TEXT, PRIMARY KEY (rtype, id))")
    n = 0
    cpu, started = cpu_seconds(), time.perf_counter()
    for f in files:
        resources = read_resources(f)
        conn.execute("BEGIN")
        for res in resources:
            conn.execute(
                "INSERT OR REPLACE INTO r VALUES (?, ?, ?)", (res["resourceType"], res["id"], json.dumps(res))
            )
            n += 1
        conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    conn.close()
    return {"resources": n, "seconds": round(seconds, 3), "resources_per_s": round(n / seconds, 1),
            "cpu_ms_per_resource": round(cpu / n * 1000, 3)}  # fmt: skip


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (import workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_import(store: Store, files: list[Path], workers: int | None) -> dict[str, Any]:
    cpu, started = cpu_seconds(), time.perf_counter()
    report = store.import_paths(files, workers=workers)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if not report.ok:
        raise SystemExit(f"import failed: {[f.to_dict() for f in report.failed][:3]}")
    n = report.resources
    return {
        "resources": n,
        "seconds": round(seconds, 3),
        "resources_per_s": round(n / seconds, 1),
        "cpu_ms_per_resource": round(cpu / n * 1000, 3),
        # What the same CPU cost gives when every core is free (the machine is shared while measuring).
        "projected_resources_per_s_all_cores_free": round(n / cpu * (os.cpu_count() or 1), 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def query_latency(store: Store, patients: list[str], repeats: int) -> dict[str, Any]:
    per_query: dict[str, list[float]] = {name: [] for name in QUERIES}
    for rtype, template in QUERIES.values():  # warm caches once
        store.search(rtype, template.format(p=patients[0]))
    for _ in range(repeats):
        for pid in patients:
            for name, (rtype, template) in QUERIES.items():
                started = time.perf_counter()
                store.search(rtype, template.format(p=pid))
                per_query[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {}
    everything: list[float] = []
    for name, values in per_query.items():
        everything += values
        out[name] = {
            "p50_ms": round(percentile(values, 0.5), 3),
            "p95_ms": round(percentile(values, 0.95), 3),
        }
    out["all"] = {"n": len(everything), "p50_ms": round(percentile(everything, 0.5), 3),
                  "p95_ms": round(percentile(everything, 0.95), 3), "max_ms": round(max(everything), 3)}  # fmt: skip
    return out


def replicate(files: list[Path], copies: int, out_dir: Path) -> list[Path]:
    """Copies of every file with every UUID replaced by a fresh one (consistent within a copy)."""
    written = []
    for k in range(copies):
        namespace = uuid.UUID(int=k + 1)
        mapping: dict[str, str] = {}

        def fresh(
            m: re.Match[str], namespace: uuid.UUID = namespace, mapping: dict[str, str] = mapping
        ) -> str:
            old = m.group(0)
            if old not in mapping:
                mapping[old] = str(uuid.uuid5(namespace, old))
            return mapping[old]

        for f in files:
            text = gzip.decompress(f.read_bytes()).decode() if f.name.endswith(".gz") else f.read_text()
            target = out_dir / f"copy{k:02d}_{f.name.removesuffix('.gz')}"
            target.write_text(_UUID.sub(fresh, text), encoding="utf-8")
            written.append(target)
    return written


def patient_ids(store: Store, limit: int, seed: int = 7) -> list[str]:
    ids = [
        row[0]
        for row in store._conn().execute("SELECT id FROM resources WHERE rtype = 'Patient' AND deleted = 0")
    ]
    random.Random(seed).shuffle(ids)
    return ids[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthea", type=Path, default=REPO.parent / "shared" / "data" / "synthea-r4")
    parser.add_argument("--scale-to", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=None, help="import worker processes (default: one per CPU)"
    )
    parser.add_argument("--patients", type=int, default=50, help="patients sampled for latency")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="imports of the bundled dataset (median)")
    args = parser.parse_args()

    synthea = sorted(args.synthea.glob("*.json"))
    if not synthea:
        raise SystemExit(f"no bundles in {args.synthea}")
    # What the app loads on first start: the bundled UK dataset (population + demo patients).
    population = REPO / "resources" / "fhir" / "population.ndjson.gz"
    demo = sorted((REPO / "resources" / "fhir" / "demo").glob("*.json"))
    bundled = [population, *demo]
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "load_average_at_start": os.getloadavg(),
        },  # fmt: skip
        "targets": {"import_resources_per_s": 2500, "patient_context_p95_ms_at_100k": 20},
    }
    with tempfile.TemporaryDirectory(prefix="fhir-bench-") as tmp:
        work = Path(tmp)
        base = result["baseline_json_plus_sqlite_insert"] = baseline_insert(
            bundled, work / "baseline.sqlite3"
        )

        runs = []
        for k in range(args.runs):
            store = Store(work / f"bundled{k}.sqlite3")
            runs.append(timed_import(store, bundled, args.workers))
            if k < args.runs - 1:
                store.close()
        rates = sorted(r["resources_per_s"] for r in runs)
        result["import_bundled"] = {
            "resources": runs[0]["resources"],
            "runs": [r["resources_per_s"] for r in runs],
            "median_resources_per_s": statistics.median(rates),
            "best_resources_per_s": rates[-1],
            "median_cpu_ms_per_resource": statistics.median(r["cpu_ms_per_resource"] for r in runs),
            "ratio_to_baseline": round(statistics.median(rates) / base["resources_per_s"], 3),
        }
        result["queries_bundled"] = {"resources": store.stats()["resources"],
                                     **query_latency(store, patient_ids(store, args.patients), args.repeats)}  # fmt: skip
        store.close()

        result["import_synthea_raw"] = timed_import(Store(work / "synthea.sqlite3"), synthea, args.workers)

        per_copy = len(read_resources(population))
        copies = max(1, -(-(args.scale_to - len(demo)) // per_copy))
        copies_dir = work / "copies"
        copies_dir.mkdir()
        scaled_files = [*replicate([population], copies, copies_dir), *demo]
        big = Store(work / "scaled.sqlite3")
        result["import_scaled"] = timed_import(big, scaled_files, args.workers)
        big.analyze()
        stats = big.stats()
        result["queries_scaled"] = {"resources": stats["resources"], "db_bytes": stats["size_bytes"],
                                    **query_latency(big, patient_ids(big, args.patients), args.repeats)}  # fmt: skip
        big.close()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["verdict"] = {
        "import_bundled_median_meets_target": result["import_bundled"]["median_resources_per_s"] >= 2500,
        "import_scaled_meets_target": result["import_scaled"]["resources_per_s"] >= 2500,
        "queries_meet_target": result["queries_scaled"]["all"]["p95_ms"] <= 20,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
