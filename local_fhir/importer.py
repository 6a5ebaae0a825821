"""Bulk import of Bundles (.json) and NDJSON (.ndjson, .ndjson.gz) files.

Each file is one SQLite transaction: it is imported entirely or not at all, and a bad file is
reported (with its OperationOutcome) while the others carry on. Bundles keep the ids their resources
carry (a load, not a client POST), with `urn:uuid:` references rewritten to `Type/id`.
"""

from __future__ import annotations

import gzip
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_fhir.bundles import apply_transaction
from local_fhir.errors import FhirStoreError, InvalidResource, issue, operation_outcome
from local_fhir.jsontext import loads_exact
from local_fhir.validation import problems

if TYPE_CHECKING:
    from local_fhir.store import Pending, Store

SUFFIXES = (".json", ".ndjson", ".ndjson.gz")
ProgressCallback = Callable[["ImportProgress"], None]


@dataclass
class ImportProgress:
    path: Path
    bytes_done: int
    bytes_total: int
    resources_done: int


@dataclass
class FileResult:
    path: Path
    ok: bool
    resources: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    outcome: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "ok": self.ok,
            "resources": self.resources,
            "by_type": self.by_type,
        }
        if self.error:
            out["error"] = self.error
            out["outcome"] = self.outcome
        return out


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        return sum(f.resources for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": len(self.files),
            "failed": len(self.failed),
            "resources": self.resources,
            "seconds": round(self.seconds, 3),
            "resources_per_second": round(self.resources / self.seconds, 1) if self.seconds else None,
            "per_file": [f.to_dict() for f in self.files],
        }


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: the given files, and every importable file under the given folders."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)))
        else:
            out.append(path)
    return out


def _as_transaction(doc: dict[str, Any]) -> dict[str, Any]:
    """Any Bundle or single resource as a transaction that keeps the resources' ids."""
    if doc.get("resourceType") == "Bundle" and doc.get("type") in ("transaction", "batch"):
        return doc
    entries = []
    items = doc.get("entry") or [] if doc.get("resourceType") == "Bundle" else [{"resource": doc}]
    for entry in items:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        request = (
            {"method": "PUT", "url": f"{rtype}/{resource['id']}"}
            if resource.get("id")
            else {"method": "POST", "url": f"{rtype}"}
        )
        entries.append(
            {
                **({"fullUrl": entry["fullUrl"]} if entry.get("fullUrl") else {}),
                "resource": resource,
                "request": request,
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _ndjson_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield number, line


def _import_ndjson(store: Store, conn: Any, path: Path, pending: Pending, counts: Counter[str]) -> None:
    errors: list[dict[str, Any]] = []
    for number, line in _ndjson_lines(path):
        where = f"{path.name}:{number}"
        try:
            resource = loads_exact(line)
        except ValueError as exc:
            errors.append(issue(f"line {number} is not JSON: {exc}", "structure", where))
            continue
        found = problems(resource, where)
        if found:
            errors.extend(found)
            continue
        if "id" not in resource:
            resource["id"] = str(uuid.uuid4())
        store._put(conn, resource, pending)
        counts[resource["resourceType"]] += 1
        if sum(len(v) for v in pending.values()) > 20000:
            store._flush(conn, pending)
    if errors:
        raise InvalidResource(
            f"{len(errors)} problem(s), first: {errors[0]['diagnostics']}", operation_outcome(errors)
        )


def import_file(store: Store, path: Path) -> FileResult:
    counts: Counter[str] = Counter()
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        pending: Pending = {}
        with store._writing() as conn:
            if path.name.endswith((".ndjson", ".ndjson.gz")):
                _import_ndjson(store, conn, path, pending, counts)
            else:
                doc = loads_exact(path.read_bytes())
                if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
                    raise InvalidResource("the file is not a FHIR resource or Bundle (no resourceType)")
                bundle = _as_transaction(doc)
                response = apply_transaction(store, conn, bundle, pending, keep_ids=True)
                for entry, result in zip(bundle["entry"], response["entry"], strict=True):
                    if "location" in result["response"] and entry["request"]["method"] != "DELETE":
                        counts[entry["resource"]["resourceType"]] += 1
            store._flush(conn, pending)
    except FhirStoreError as exc:
        return FileResult(path, False, error=str(exc), outcome=exc.outcome)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:  # unreadable, not JSON, bad gzip
        message = f"{type(exc).__name__}: {exc}"
        return FileResult(
            path, False, error=message, outcome=operation_outcome([issue(message, "structure", str(path))])
        )
    return FileResult(path, True, sum(counts.values()), dict(sorted(counts.items())))


def import_paths(
    store: Store, paths: Iterable[str | Path], on_progress: ProgressCallback | None = None
) -> ImportReport:
    files = expand(paths)
    sizes = [f.stat().st_size if f.is_file() else 0 for f in files]
    total, done, resources = sum(sizes), 0, 0
    report = ImportReport()
    started = time.perf_counter()
    for path, size in zip(files, sizes, strict=True):
        result = import_file(store, path)
        report.files.append(result)
        done += size
        resources += result.resources
        if on_progress:
            on_progress(ImportProgress(path, done, total, resources))
    report.seconds = time.perf_counter() - started
    return report
