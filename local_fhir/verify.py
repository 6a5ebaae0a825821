"""Validate files without a store (`local-fhir validate`): the checks every write makes."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from local_fhir.errors import issue, operation_outcome
from local_fhir.jsontext import loads_exact
from local_fhir.validation import problems


def _ndjson(path: Path) -> tuple[int, list[dict[str, Any]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    found: list[dict[str, Any]] = []
    count = 0
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            count += 1
            where = f"{path.name}:{number}"
            try:
                resource = loads_exact(line)
            except ValueError as exc:
                found.append(issue(f"line {number}: {exc}", "structure", where, severity="fatal"))
                continue
            found += problems(resource, where)
    return count, found


def verify_file(path: Path) -> dict[str, Any]:
    """{path, ok, resources, outcome}: a resource or Bundle (.json, validated whole, its entries
    included) or NDJSON (.ndjson, .ndjson.gz, a resource a line)."""
    try:
        if path.name.endswith((".ndjson", ".ndjson.gz")):
            count, found = _ndjson(path)
        else:
            doc = loads_exact(path.read_bytes())
            entries = doc.get("entry") if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" else None
            count = len(entries) if isinstance(entries, list) else 1
            found = problems(doc)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:  # missing, not JSON, bad gzip
        count, found = 0, [issue(f"{type(exc).__name__}: {exc}", "structure", str(path), severity="fatal")]
    ok = not any(i["severity"] in ("error", "fatal") for i in found)
    if ok:
        found.insert(0, issue(f"{path.name} is valid R4 (base definitions)", "informational", severity="information"))
    return {"path": str(path), "ok": ok, "resources": count, "outcome": operation_outcome(found)}
