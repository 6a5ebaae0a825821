"""Validate files without a store (`local-fhir validate`): the checks every write makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local_fhir import inputs
from local_fhir.errors import issue, operation_outcome
from local_fhir.jsontext import TooDeep, loads_exact
from local_fhir.validation import problems


def _ndjson(path: Path) -> tuple[int, list[dict[str, Any]]]:
    """Line by line, within the limits of `inputs.py` (a `.gz` file expanded as a stream)."""
    found: list[dict[str, Any]] = []
    count = 0
    cap = inputs.MAX_LINE_BYTES
    for number, line in inputs.lines(path, cap):
        where = f"{path.name}:{number}"
        if line is None:
            count += 1
            found.append(issue(inputs.line_too_long(number, cap), "too-costly", where, severity="fatal"))
            continue
        if not line.strip():
            continue
        count += 1
        try:
            resource = loads_exact(line)
        except ValueError as exc:
            code = "too-costly" if isinstance(exc, TooDeep) else "structure"
            found.append(issue(f"line {number}: {exc}", code, where, severity="fatal"))
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
            doc = loads_exact(inputs.read_json_file(path))
            entries = doc.get("entry") if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" else None
            count = len(entries) if isinstance(entries, list) else 1
            found = problems(doc)
    except (OSError, ValueError, UnicodeDecodeError, EOFError, RecursionError) as exc:  # missing, not JSON, bad gzip
        code = "too-costly" if isinstance(exc, inputs.InputTooLarge | TooDeep | RecursionError) else "structure"
        count, found = 0, [issue(f"{type(exc).__name__}: {exc}", code, str(path), severity="fatal")]
    ok = not any(i["severity"] in ("error", "fatal") for i in found)
    if ok:
        found.insert(0, issue(f"{path.name} is valid R4 (base definitions)", "informational", severity="information"))
    return {"path": str(path), "ok": ok, "resources": count, "outcome": operation_outcome(found)}
