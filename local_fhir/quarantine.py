"""The quarantine: resources a lenient import could not store, each kept with its problems.

A hospital's export always holds a few imperfect resources (a DiagnosticReport without its code,
an Encounter without its class). `import --lenient` stores every valid resource of a file and
puts each invalid one here instead of refusing the file, so IT can load the rest and see exactly
what was left out. Nothing is left out silently:

- each entry keeps the resource as received (its JSON text, references already rewritten the way
  the import rewrote the others), where it came from, and the OperationOutcome of its problems;
- the references it holds are kept (`quarantine_ref`), so the app can tell that part of a
  patient's record could not be loaded (`counts_for_patient`), and the stored resources that
  point at a quarantined one are listed (`referrers`);
- `retry` validates an entry again (as it is, or a corrected version) and stores it when valid;
  `drop` forgets it. Writing a valid version of a quarantined resource (by any route) removes its
  entry: the record then holds what was missing.

Tables (created with the store's schema): `quarantine` (qid, rtype, id, source, received, json,
outcome) and `quarantine_ref` (qid, target_type, target_id).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_fhir.dates import now_instant
from local_fhir.errors import NotFound, issue, operation_outcome
from local_fhir.indexing import parse_reference
from local_fhir.jsontext import dumps, loads, loads_exact
from local_fhir.validation import problems

if TYPE_CHECKING:
    from local_fhir.store import Store

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quarantine (qid INTEGER PRIMARY KEY, rtype TEXT, id TEXT, "
    "source TEXT NOT NULL, received TEXT NOT NULL, json TEXT NOT NULL, outcome TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS quarantine_key ON quarantine (rtype, id)",
    "CREATE TABLE IF NOT EXISTS quarantine_ref (qid INTEGER NOT NULL, target_type TEXT NOT NULL, "
    "target_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS quarantine_ref_target ON quarantine_ref (target_type, target_id, qid)",
    "CREATE INDEX IF NOT EXISTS quarantine_ref_qid ON quarantine_ref (qid)",
)


@dataclass
class Quarantined:
    """One resource (or unreadable line) a lenient import left out, made in a worker process."""

    rtype: str | None
    id: str | None
    source: str  # file, and where in it ("Bundle.entry[3]", "line 12")
    text: str  # the JSON as received (references rewritten as for the stored resources)
    issues: list[dict[str, Any]]
    refs: list[tuple[str, str]] = field(default_factory=list)  # (type, id) it points at

    def summary(self, qid: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"qid": qid} if qid is not None else {}
        out.update({"resourceType": self.rtype, "id": self.id, "source": self.source,
                    "problems": len(self.issues)})  # fmt: skip
        if self.issues:
            first = self.issues[0]
            out["first_problem"] = f"{first.get('diagnostics')} at {(first.get('expression') or ['?'])[0]}"
        return out


def references_in(value: Any) -> list[tuple[str, str]]:
    """(type, id) of every literal reference in a resource, in order, without repeats."""
    found: dict[tuple[str, str], None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "reference" and isinstance(item, str):
                    rtype, rid = parse_reference(item)
                    if rtype and rid:
                        found[(rtype, rid)] = None
                elif isinstance(item, dict | list):
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict | list):
                    walk(item)

    walk(value)
    return list(found)


def make(resource: Any, source: str, issues: list[dict[str, Any]], text: str | None = None) -> Quarantined:
    """A quarantine entry for an invalid resource (`text`: the JSON as received, when there is one)."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    rid = resource.get("id") if isinstance(resource, dict) else None
    rtype = rtype if isinstance(rtype, str) and rtype else None
    rid = rid if isinstance(rid, str) and _ID.match(rid) else None
    refs = references_in(resource)
    if rtype == "Patient" and rid:
        refs.insert(0, ("Patient", rid))
    if text is None:
        try:
            text = dumps(resource)
        except (TypeError, ValueError):
            text = repr(resource)
    return Quarantined(rtype, rid, source, text, issues, refs)


def insert(conn: sqlite3.Connection, items: list[Quarantined]) -> list[int]:
    """Add entries (one for the same type and id, or the same unreadable text from the same place,
    replaces the earlier one); their qids."""
    qids = []
    received = now_instant()
    for item in items:
        if item.rtype and item.id:
            _delete_key(conn, item.rtype, item.id)
        else:  # no type or id (not JSON): the same text from the same place is the same entry
            for (qid,) in conn.execute(
                "SELECT qid FROM quarantine WHERE id IS NULL AND source = ? AND json = ?", (item.source, item.text)
            ).fetchall():
                delete(conn, qid)
        qid = conn.execute(
            "INSERT INTO quarantine (rtype, id, source, received, json, outcome) VALUES (?, ?, ?, ?, ?, ?)",
            (item.rtype, item.id, item.source, received, item.text, dumps(operation_outcome(item.issues))),
        ).lastrowid
        assert qid is not None
        conn.executemany("INSERT INTO quarantine_ref VALUES (?, ?, ?)", [(qid, t, i) for t, i in item.refs])
        qids.append(qid)
    return qids


def _delete_key(conn: sqlite3.Connection, rtype: str, rid: str) -> None:
    for (qid,) in conn.execute("SELECT qid FROM quarantine WHERE rtype = ? AND id = ?", (rtype, rid)).fetchall():
        delete(conn, qid)


def delete(conn: sqlite3.Connection, qid: int) -> None:
    conn.execute("DELETE FROM quarantine_ref WHERE qid = ?", (qid,))
    conn.execute("DELETE FROM quarantine WHERE qid = ?", (qid,))


def resolved(conn: sqlite3.Connection, rtype: str, rid: str) -> None:
    """A valid version of (type, id) was stored: its quarantine entry, if any, is done with."""
    _delete_key(conn, rtype, rid)


def has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'").fetchone() is not None


def referrers(conn: sqlite3.Connection, rtype: str, rid: str) -> list[str]:
    """`Type/id` of the stored resources, and `quarantine/<qid>` of the quarantined ones, that point
    at (type, id)."""
    stored = conn.execute(
        "SELECT DISTINCT r.rtype, r.id FROM idx_reference x JOIN resources r ON r.rid = x.rid "
        "WHERE x.target_id = ? AND x.target_type = ? AND r.deleted = 0 ORDER BY r.rtype, r.id",
        (rid, rtype),
    ).fetchall()
    held = conn.execute(
        "SELECT DISTINCT qid FROM quarantine_ref WHERE target_type = ? AND target_id = ? ORDER BY qid", (rtype, rid)
    ).fetchall()
    return [f"{t}/{i}" for t, i in stored] + [f"quarantine/{q}" for (q,) in held]


def references_report(conn: sqlite3.Connection, qids: list[int]) -> list[dict[str, Any]]:
    """For entries just quarantined: each resource that points at one of them."""
    out = []
    for qid in qids:
        row = conn.execute("SELECT rtype, id FROM quarantine WHERE qid = ?", (qid,)).fetchone()
        if row is None or not row[0] or not row[1]:
            continue
        for source in referrers(conn, row[0], row[1]):
            if source != f"quarantine/{qid}":
                out.append({"from": source, "to": f"{row[0]}/{row[1]}", "qid": qid})
    return out


# -- the store-level API (Store.quarantine_* delegate here) ------------------------------------------
def _row(conn: sqlite3.Connection, qid: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT qid, rtype, id, source, received, json, outcome FROM quarantine WHERE qid = ?", (qid,)
    ).fetchone()
    if row is None:
        raise NotFound(f"quarantine entry {qid} does not exist")
    return tuple(row)


def _summary(row: tuple[Any, ...], patients: list[str]) -> dict[str, Any]:
    qid, rtype, rid, source, received, _, outcome = row
    issues = loads(outcome).get("issue", [])
    first = issues[0] if issues else {}
    return {
        "qid": qid,
        "resourceType": rtype,
        "id": rid,
        "source": source,
        "received": received,
        "patients": patients,
        "problems": len(issues),
        "first_problem": f"{first.get('diagnostics')} at {(first.get('expression') or ['?'])[0]}" if first else None,
    }


def _patients(conn: sqlite3.Connection, qid: int) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT target_id FROM quarantine_ref WHERE qid = ? AND target_type = 'Patient' ORDER BY rowid", (qid,)
        )
    ]


def list_entries(store: Store, rtype: str | None = None, patient: str | None = None) -> list[dict[str, Any]]:
    conn = store._conn()
    if not has_table(conn):
        return []
    sql = "SELECT qid, rtype, id, source, received, json, outcome FROM quarantine q WHERE 1 = 1"
    args: list[Any] = []
    if rtype:
        sql += " AND q.rtype = ?"
        args.append(rtype)
    if patient:
        sql += " AND EXISTS (SELECT 1 FROM quarantine_ref r WHERE r.qid = q.qid AND r.target_type = 'Patient' AND r.target_id = ?)"
        args.append(patient)
    rows = conn.execute(sql + " ORDER BY qid", args).fetchall()
    return [_summary(tuple(row), _patients(conn, row[0])) for row in rows]


def get(store: Store, qid: int) -> dict[str, Any]:
    conn = store._conn()
    if not has_table(conn):
        raise NotFound(f"quarantine entry {qid} does not exist")
    row = _row(conn, qid)
    out = _summary(row, _patients(conn, qid))
    try:
        out["resource"] = loads(row[5])
    except ValueError:
        out["text"] = row[5]  # a line that was not JSON
    out["outcome"] = loads(row[6])
    out["referenced_by"] = referrers(conn, row[1], row[2]) if row[1] and row[2] else []
    return out


def counts_for_patient(store: Store, patient_id: str) -> dict[str, int]:
    conn = store._conn()
    if not has_table(conn):
        return {}
    rows = conn.execute(
        "SELECT coalesce(q.rtype, 'unknown'), count(DISTINCT q.qid) FROM quarantine q JOIN quarantine_ref r "
        "ON r.qid = q.qid WHERE r.target_type = 'Patient' AND r.target_id = ? GROUP BY 1 ORDER BY 1",
        (patient_id,),
    ).fetchall()
    return {rtype: n for rtype, n in rows}


def drop(store: Store, qid: int) -> None:
    with store._writing() as conn:
        _row(conn, qid)
        delete(conn, qid)


def retry(store: Store, qid: int, replacement: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate an entry again (or a corrected version of it, which must be the same resource);
    store it when valid and remove the entry, else keep it with its problems as found now."""
    _, rtype, rid, source, _, text, _ = _row(store._conn(), qid)
    resource: Any = replacement
    found: list[dict[str, Any]] = []
    if resource is None:
        try:
            resource = loads_exact(text)
        except ValueError as exc:
            found = [issue(f"not JSON: {exc}", "structure", source)]
    if not found:
        if isinstance(resource, dict) and not resource.get("id"):
            resource["id"] = rid or str(uuid.uuid4())
        if isinstance(resource, dict) and rtype and (resource.get("resourceType"), resource.get("id")) != (
            rtype, rid or resource.get("id")
        ):
            found = [issue(f"the corrected resource must be {rtype}/{rid or '(any id)'}", "invalid", "resourceType")]
        else:
            found = problems(resource)
    if found:
        outcome = operation_outcome(found)
        with store._writing() as conn:
            conn.execute(
                "UPDATE quarantine SET outcome = ?, json = ? WHERE qid = ?",
                (dumps(outcome), dumps(resource) if replacement is not None else text, qid),
            )
        return {"qid": qid, "stored": False, "outcome": outcome}
    with store.write_session() as writes:
        written = writes.put(resource)
        writes.forget_quarantined(qid)
    return {"qid": qid, "stored": True,
            "location": f"{resource['resourceType']}/{resource['id']}/_history/{written.version}"}  # fmt: skip
