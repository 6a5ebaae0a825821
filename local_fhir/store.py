"""The store: resource versions in SQLite plus typed search index tables.

Tables:
- `resources`: the current version of every resource (the JSON text as received, plus meta),
  one row per (type, id); a deleted resource keeps its row with `deleted = 1` and no JSON.
- `history`: every earlier version, moved there when a resource is updated or deleted.
- `idx_<type>` for token, string, date, reference, quantity, number and uri parameters, keyed by
  the resource row id, with one index for lookups by value and one by row id.
- `quarantine` and `quarantine_ref`: what a lenient import could not store (`quarantine.py`).

Reads use one connection per thread; writes are serialised by one lock (and by SQLite's own
write lock across processes). The database runs in WAL mode so readers never wait for a writer.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from importlib import resources as package_files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from local_fhir import cipher, observers, quarantine
from local_fhir.dates import now_instant
from local_fhir.errors import (
    Conflict,
    Duplicate,
    Gone,
    InvalidResource,
    NotFound,
    StoreUnavailable,
    UnsupportedSearch,
    issue,
    operation_outcome,
)
from local_fhir.indexing import TABLES, index_rows
from local_fhir.jsontext import dumps, loads, loads_exact
from local_fhir.search import Plan, SearchBuilder, param_sql, parse_params
from local_fhir.searchparams import registry
from local_fhir.validation import validate

if TYPE_CHECKING:
    from local_fhir.importer import ImportReport

SCHEMA_VERSION = "1"
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

Pending = dict[str, list[tuple[Any, ...]]]


# Bumped when the rows derived from the same definitions change (2: aliased parameters such as
# Observation `patient` are no longer stored, searches read `subject`; 3: token rows for the
# `:of-type` and `:identifier` modifiers): a store reindexes on open.
INDEX_FORMAT = b"3"


def _definitions_hash() -> str:
    digest = hashlib.sha256(INDEX_FORMAT)
    for name in ("search_parameters.json", "compartment_patient.json"):
        digest.update(package_files.files("local_fhir").joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def _resource(text: str | bytes) -> dict[str, Any]:
    """A stored resource's JSON text, parsed (the store keeps only JSON objects)."""
    resource: dict[str, Any] = loads(text)
    return resource


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def _without_version_meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


def _with_meta(resource: dict[str, Any], version: int | str, last_updated: str) -> dict[str, Any]:
    """The resource with meta.versionId/lastUpdated set; everything else exactly as given, in the
    order given, after resourceType, id and meta (which lead, as R4's own examples do)."""
    given = resource.get("meta") or {}
    meta = {"versionId": str(version), "lastUpdated": last_updated}
    meta.update((k, v) for k, v in given.items() if k not in meta)
    out: dict[str, Any] = {"resourceType": resource["resourceType"]}
    if "id" in resource:
        out["id"] = resource["id"]
    out["meta"] = meta
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return out


# Placeholders for meta.versionId/lastUpdated in a prepared text; JSON escapes them as \u0000v/l.
# meta follows resourceType and id (both pattern-checked) and starts with them, so the first
# occurrence is always meta's own.
_VERSION_MARK, _UPDATED_MARK = "\x00v", "\x00l"


@dataclass
class Prepared:
    """A validated resource turned into text and index rows (can be done in a worker process)."""

    rtype: str
    id: str
    template: str
    rows: dict[str, list[tuple[Any, ...]]]

    def stored_text(self, version: int, last_updated: str) -> str:
        return self.template.replace('"\\u0000v"', f'"{version}"', 1).replace(
            '"\\u0000l"', f'"{last_updated}"', 1
        )


@dataclass
class Written:
    text: str
    created: bool
    version: int
    last_updated: str


def prepare(resource: dict[str, Any], reg: Any) -> Prepared:
    template = dumps(_with_meta(resource, _VERSION_MARK, _UPDATED_MARK))
    return Prepared(resource["resourceType"], resource["id"], template, index_rows(resource, reg))


def check_type(rtype: str) -> None:
    if not isinstance(rtype, str) or not _TYPE_NAME.match(rtype):
        raise InvalidResource(f"{rtype!r} is not a resource type name")


def check_id(rid: str) -> None:
    if not isinstance(rid, str) or not _ID.match(rid):
        raise InvalidResource(f"{rid!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")


class WriteSession:
    """One write transaction on a Store, for the transaction, batch and bulk-import writers:
    writes in it are committed together or not at all, and their search-index rows are buffered
    and flushed in bulk (before a search inside the transaction, and at commit)."""

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        self.store = store
        self._conn = conn
        self._pending: Pending = {}

    def put(self, resource: dict[str, Any], if_match: str | None = None) -> Written:
        """A validated resource that has an id: a new version, or the first one."""
        return self.store._put(self._conn, resource, self._pending, if_match)

    def put_prepared(self, item: Prepared, absent: set[tuple[str, str]] | None = None) -> Written:
        return self.store._put_prepared(self._conn, item, self._pending, absent=absent)

    def absent(self, items: Sequence[Prepared]) -> set[tuple[str, str]]:
        """(type, id) of the items that have no row yet (one query per type)."""
        return self.store._absent(self._conn, items)

    def delete(self, rtype: str, rid: str) -> bool:
        return self.store._delete(self._conn, rtype, rid)

    def flush(self) -> None:
        """Write the buffered index rows (searches inside the transaction must see its writes)."""
        self.store._flush(self._conn, self._pending)

    def quarantine(self, items: Sequence[quarantine.Quarantined]) -> list[int]:
        """Put invalid resources in the quarantine (lenient import); their qids."""
        if not items:
            return []
        self.store._local.quarantined = True
        return quarantine.insert(self._conn, list(items))

    def quarantine_references(self, qids: list[int]) -> list[dict[str, Any]]:
        """The resources (stored or quarantined) that point at the given quarantine entries."""
        self.flush()
        return quarantine.references_report(self._conn, qids)

    def forget_quarantined(self, qid: int) -> None:
        quarantine.delete(self._conn, qid)


class Store:
    """An R4 store in one SQLite file. `Store(path)` creates the schema when needed."""

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False,
                 key: bytes | None = None):  # fmt: skip
        """`key`: the SQLCipher key (default: what a registered key provider gives for this file,
        see cipher.py); without one the file is plain SQLite, and an encrypted file does not open."""
        self.path = Path(path)
        self.read_only = read_only
        self._key = key if key is not None else cipher.key_for(self.path)
        if read_only:
            create = False
        if not create and not self.path.is_file():
            raise StoreUnavailable(
                f"no FHIR database at {self.path} (run `local-fhir init --db {self.path}`)"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # private from the first byte, whatever the umask
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        if not cipher.is_plaintext(self.path) and self._key is None:
            raise StoreUnavailable(
                f"{self.path} is encrypted (or damaged): sign in first (local-fhir --user NAME "
                "--password-file FILE, or CLARKE_USER and CLARKE_PASSWORD_FILE)"
            )
        self.registry = registry()
        self.builder = SearchBuilder(self.registry)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        try:
            self._check_schema() if read_only else self._init_schema()
        except cipher.WrongKey as exc:
            self.close()
            raise StoreUnavailable(f"{self.path} does not open with this key: {exc}") from exc
        except cipher.DatabaseErrors as exc:
            self.close()
            raise StoreUnavailable(f"{self.path} is not a usable FHIR database: {exc}") from exc

    # -- connections and schema ------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable(f"the store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:  # opened as it is: no schema set-up, no reindex, no writes possible
                conn = self._read_only_connection()
                self._local.conn = conn
                with self._connections_lock:
                    self._connections.append(conn)
                return conn
            conn = cipher.connect(  # a SQLCipher connection when keyed: the same interface
                self.path, self._key, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL, as the app database: a write-back the app records as done must survive a power
            # cut too (NORMAL in WAL mode can lose the last commits).
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA temp_store = MEMORY")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _read_only_connection(self) -> sqlite3.Connection:
        """mode=ro sees a running writer's WAL; where the folder is read-only (no -shm can be made)
        no writer can be running either, and the file is opened immutable."""
        base = self.path.resolve().as_uri()
        for query in ("mode=ro", "mode=ro&immutable=1"):
            conn: sqlite3.Connection = cipher.connect_uri(
                f"{base}?{query}", self._key, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA query_only = ON")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except cipher.OperationalErrors:
                conn.close()
                if query.endswith("immutable=1"):
                    raise
        raise AssertionError("unreachable")

    def _check_schema(self) -> None:
        """A read-only store must already be a current local_fhir database (it cannot be migrated)."""
        info = dict(self._conn().execute("SELECT key, value FROM store_info").fetchall())
        if info.get("schema") != SCHEMA_VERSION:
            raise StoreUnavailable(
                f"{self.path} has schema {info.get('schema')}, this local_fhir reads {SCHEMA_VERSION}"
            )
        if info.get("definitions") != _definitions_hash():
            raise StoreUnavailable(
                f"{self.path} was indexed by another local_fhir version; open it once with `local-fhir` to reindex"
            )

    def _init_schema(self) -> None:
        conn = self._conn()
        db = sqlite_utils.Database(conn)
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                db.table("store_info").create({"key": str, "value": str}, pk="key", if_not_exists=True)
                db.table("resources").create(
                    {"rid": int, "rtype": str, "id": str, "version": int, "last_updated": str, "lu": float,
                     "deleted": int, "json": str},
                    pk="rid", not_null={"rtype", "id", "version", "last_updated", "lu", "deleted"}, if_not_exists=True,
                )  # fmt: skip
                db.table("resources").create_index(["rtype", "id"], unique=True, if_not_exists=True)
                db.table("resources").create_index(["rtype", "lu"], if_not_exists=True)
                db.table("history").create(
                    {
                        "rtype": str,
                        "id": str,
                        "version": int,
                        "last_updated": str,
                        "deleted": int,
                        "json": str,
                    },
                    pk=("rtype", "id", "version"),
                    if_not_exists=True,
                )
                lookup = {
                    "token": ["code", "system"], "string": ["norm"], "date": ["low", "high"],
                    "reference": ["target_id", "target_type"], "quantity": ["value"], "number": ["value"], "uri": ["value"],
                }  # fmt: skip
                for table, columns in TABLES.items():
                    kinds = {
                        "low": float,
                        "high": float,
                        "value": float if table in ("quantity", "number") else str,
                    }
                    spec: dict[str, Any] = {"rid": int, "rtype": str, "param": str}
                    spec.update({c: kinds.get(c, str) for c in columns})
                    name = f"idx_{table}"
                    db.table(name).create(spec, not_null={"rid", "rtype", "param"}, if_not_exists=True)
                    db.table(name).create_index(["rtype", "param", *lookup[table], "rid"], if_not_exists=True)
                    db.table(name).create_index(["rid", "param", *lookup[table]], if_not_exists=True)
                db.table("idx_reference").create_index(["target_id", "target_type"], if_not_exists=True)
                for statement in quarantine.SCHEMA:  # added with schema 1: older stores get it here
                    conn.execute(statement)
                info = dict(conn.execute("SELECT key, value FROM store_info").fetchall())
                if info.get("schema") not in (None, SCHEMA_VERSION):
                    raise StoreUnavailable(
                        f"{self.path} has schema {info['schema']}, this local_fhir reads {SCHEMA_VERSION}"
                    )
                conn.execute("INSERT OR REPLACE INTO store_info VALUES ('schema', ?)", (SCHEMA_VERSION,))
                stale = info.get("definitions") != _definitions_hash()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if stale:
            self.reindex()

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                with suppress(*cipher.ERRORS):
                    conn.close()
            self._connections.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write_session(self) -> Iterator[WriteSession]:
        """A write transaction for a bundle or a bulk import: committed (index rows flushed first)
        when the block ends, rolled back if it raises."""
        with self._writing() as conn:
            session = WriteSession(self, conn)
            yield session
            session.flush()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; everything in it is committed together or not at all."""
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except cipher.OperationalErrors as exc:
                raise StoreUnavailable(f"cannot write to {self.path}: {exc}") from exc
            try:
                # Whether a write must look for a quarantine entry to resolve (none: no lookups).
                self._local.quarantined = conn.execute("SELECT EXISTS (SELECT 1 FROM quarantine)").fetchone()[0] == 1
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except cipher.OperationalErrors as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc}") from exc

    # -- writing primitives (called inside _writing) ---------------------------------------------
    @staticmethod
    def _flush(conn: sqlite3.Connection, pending: Pending) -> None:
        for table, rows in pending.items():
            if rows:
                marks = ",".join("?" * (3 + len(TABLES[table])))
                conn.executemany(f"INSERT INTO idx_{table} VALUES ({marks})", rows)
                rows.clear()

    def _put(
        self,
        conn: sqlite3.Connection,
        resource: dict[str, Any],
        pending: Pending,
        if_match: str | None = None,
    ) -> Written:
        """Write a validated resource that has an id (a new version, or the first one)."""
        return self._put_prepared(conn, prepare(resource, self.registry), pending, if_match)

    @staticmethod
    def _absent(conn: sqlite3.Connection, items: Sequence[Prepared]) -> set[tuple[str, str]]:
        """(type, id) of the items that have no row yet: one query per type for a bulk load's
        piece instead of one per resource."""
        by_type: dict[str, set[str]] = {}
        for item in items:
            by_type.setdefault(item.rtype, set()).add(item.id)
        absent: set[tuple[str, str]] = set()
        for rtype, ids in by_type.items():
            wanted = sorted(ids)
            for start in range(0, len(wanted), 500):  # well under SQLite's limit on parameters
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id FROM resources WHERE rtype = ? AND id IN ({marks})"
                found = {row[0] for row in conn.execute(sql, (rtype, *chunk))}
                absent.update((rtype, rid) for rid in chunk if rid not in found)
        return absent

    def _put_prepared(
        self,
        conn: sqlite3.Connection,
        item: Prepared,
        pending: Pending,
        if_match: str | None = None,
        absent: set[tuple[str, str]] | None = None,
    ) -> Written:
        """Writing content identical to the current version is a no-op (no new version).
        `absent`: keys known to have no row (from `_absent`); used once, so a second copy of the
        same resource in a batch looks up the first."""
        rtype, rid = item.rtype, item.id
        if absent is not None and (rtype, rid) in absent:
            absent.discard((rtype, rid))
            row = None
        else:
            row = conn.execute(
                "SELECT rid, version, deleted, json, last_updated FROM resources WHERE rtype = ? AND id = ?",
                (rtype, rid),
            ).fetchone()
        if if_match is not None and (row is None or str(row[1]) != if_match):
            raise Conflict(f"{rtype}/{rid}: version {if_match} is not the current version")
        if row is not None and not row[2]:
            current = dumps(_without_version_meta(loads_exact(row[3])))
            if current == dumps(_without_version_meta(loads_exact(item.template))):
                return Written(row[3], False, row[1], row[4])
        version = row[1] + 1 if row else 1
        last_updated = now_instant()
        text = item.stored_text(version, last_updated)
        lu = _epoch(last_updated)
        if row is not None:
            self._flush(conn, pending)  # a resource written twice in one batch: old rows are on disk
            row_id = row[0]
            conn.execute(
                "INSERT INTO history SELECT rtype, id, version, last_updated, deleted, json FROM resources WHERE rid = ?",
                (row_id,),
            )
            conn.execute(
                "UPDATE resources SET version = ?, last_updated = ?, lu = ?, deleted = 0, json = ? WHERE rid = ?",
                (version, last_updated, lu, text, row_id),
            )
            for table in TABLES:
                conn.execute(f"DELETE FROM idx_{table} WHERE rid = ?", (row_id,))
        else:
            row_id = conn.execute(
                "INSERT INTO resources (rtype, id, version, last_updated, lu, deleted, json) VALUES (?, ?, ?, ?, ?, 0, ?)",
                (rtype, rid, version, last_updated, lu, text),
            ).lastrowid
        for table, rows in item.rows.items():
            pending.setdefault(table, []).extend((row_id, rtype, *r) for r in rows)
        if getattr(self._local, "quarantined", False):
            quarantine.resolved(conn, rtype, rid)
        return Written(text, row is None or bool(row[2]), version, last_updated)

    def _delete(self, conn: sqlite3.Connection, rtype: str, rid: str) -> bool:
        """Versioned delete. False when there was nothing current to delete."""
        row = conn.execute(
            "SELECT rid, version, deleted FROM resources WHERE rtype = ? AND id = ?", (rtype, rid)
        ).fetchone()
        if row is None or row[2]:
            return False
        conn.execute(
            "INSERT INTO history SELECT rtype, id, version, last_updated, deleted, json FROM resources WHERE rid = ?",
            (row[0],),
        )
        last_updated = now_instant()
        conn.execute(
            "UPDATE resources SET version = ?, last_updated = ?, lu = ?, deleted = 1, json = NULL WHERE rid = ?",
            (row[1] + 1, last_updated, _epoch(last_updated), row[0]),
        )
        for table in TABLES:
            conn.execute(f"DELETE FROM idx_{table} WHERE rid = ?", (row[0],))
        return True

    @staticmethod
    def _check(resource: Any) -> dict[str, Any]:
        validate(resource)
        checked: dict[str, Any] = resource  # validate() raised unless it is a valid resource object
        return checked

    # -- CRUD ------------------------------------------------------------------------------------
    def write(self, resource: dict[str, Any], *, create: bool = False, if_match: str | None = None) -> Written:
        """Validate and write a resource; what is stored is the JSON validated, with meta set.
        `create`: a new resource (an id is assigned when it has none; Duplicate if it exists);
        otherwise an update (a new version, or the first one) that needs an id."""
        self._check(resource)
        if create and "id" not in resource:
            resource = {"resourceType": resource["resourceType"], "id": str(uuid.uuid4()), **resource}
        elif "id" not in resource:
            raise InvalidResource("update needs a resource with an id", operation_outcome(
                [issue("update needs a resource with an id", "required", f"{resource['resourceType']}.id")]))  # fmt: skip
        pending: Pending = {}
        with self._writing() as conn:
            if create and conn.execute(
                "SELECT 1 FROM resources WHERE rtype = ? AND id = ? AND deleted = 0",
                (resource["resourceType"], resource["id"]),
            ).fetchone():
                raise Duplicate(f"{resource['resourceType']}/{resource['id']} already exists (use update)")
            written = self._put(conn, resource, pending, if_match)
            self._flush(conn, pending)
        observers.notify(
            self.path,
            interaction="create" if written.created else "update",
            resource_type=resource["resourceType"],
            id=resource["id"],
            version=written.version,
        )
        return written

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create a resource; an id is assigned when it has none. Returns the stored resource."""
        return _resource(self.write(resource, create=True).text)

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        """Write a new version (or the first one: update-as-create). Earlier versions are kept."""
        return _resource(self.write(resource, if_match=if_match).text)

    def validate(self, resource: Any, *, mode: str | None = None, rtype: str | None = None,
                 rid: str | None = None, profile: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The `$validate` operation: an OperationOutcome listing every problem, or one
        information issue when there is none. `mode` (create, update, delete) checks what that
        interaction would need; `rtype` and `rid` are the type and id of the url called."""
        from local_fhir.operations import validate_operation

        return validate_operation(self, resource, mode=mode, rtype=rtype, rid=rid, profile=profile)

    # -- quarantine (lenient imports) ------------------------------------------------------------
    def quarantine_list(self, rtype: str | None = None, patient: str | None = None) -> list[dict[str, Any]]:
        """A summary of each quarantined resource (optionally of one type or one patient's)."""
        return quarantine.list_entries(self, rtype, patient)

    def quarantine_get(self, qid: int) -> dict[str, Any]:
        """One entry in full: the resource as received, its problems, what points at it."""
        return quarantine.get(self, qid)

    def quarantine_retry(self, qid: int, replacement: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate an entry again (or a corrected version); stored and removed when valid."""
        result = quarantine.retry(self, qid, replacement)
        observers.notify(self.path, interaction="quarantine-retry", quarantine_id=qid, corrected=replacement is not None)
        return result

    def quarantine_drop(self, qid: int) -> None:
        quarantine.drop(self, qid)
        observers.notify(self.path, interaction="quarantine-drop", quarantine_id=qid)

    def quarantined_for_patient(self, patient_id: str) -> dict[str, int]:
        """How many of a patient's resources are quarantined, by type ({"DiagnosticReport": 1,
        "Encounter": 1}); {} when none. The app warns that part of the record could not be loaded."""
        return quarantine.counts_for_patient(self, patient_id)

    def delete(self, rtype: str, rid: str) -> None:
        check_type(rtype)
        check_id(rid)
        with self._writing() as conn:
            if not self._delete(conn, rtype, rid):
                row = conn.execute(
                    "SELECT 1 FROM resources WHERE rtype = ? AND id = ?", (rtype, rid)
                ).fetchone()
                if row is None:
                    raise NotFound(f"{rtype}/{rid} does not exist")
        observers.notify(self.path, interaction="delete", resource_type=rtype, id=rid)

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        check_type(rtype)
        check_id(rid)
        rows = self._read(
            "SELECT deleted, json, version FROM resources WHERE rtype = ? AND id = ?", (rtype, rid)
        )
        if not rows:
            raise NotFound(f"{rtype}/{rid} does not exist")
        if rows[0][0]:
            raise Gone(f"{rtype}/{rid} was deleted (version {rows[0][2]})")
        return _resource(rows[0][1])

    def read_text(self, rtype: str, rid: str) -> str:
        """The stored JSON text exactly as kept (numbers as written)."""
        check_type(rtype)
        check_id(rid)
        rows = self._read("SELECT deleted, json FROM resources WHERE rtype = ? AND id = ?", (rtype, rid))
        if not rows:
            raise NotFound(f"{rtype}/{rid} does not exist")
        if rows[0][0]:
            raise Gone(f"{rtype}/{rid} was deleted")
        text: str = rows[0][1]
        return text

    def _versions(self, rtype: str, rid: str) -> list[tuple[int, str, int, str | None]]:
        rows = self._read(
            "SELECT version, last_updated, deleted, json FROM resources WHERE rtype = ? AND id = ? "
            "UNION ALL SELECT version, last_updated, deleted, json FROM history WHERE rtype = ? AND id = ? "
            "ORDER BY version DESC",
            (rtype, rid, rtype, rid),
        )
        return [(int(v), lu, int(d), j) for v, lu, d, j in rows]

    def vread(self, rtype: str, rid: str, vid: str) -> dict[str, Any]:
        check_type(rtype)
        check_id(rid)
        for version, _, deleted, text in self._versions(rtype, rid):
            if str(version) == str(vid):
                if deleted or text is None:
                    raise Gone(f"{rtype}/{rid} version {vid} is a deletion")
                return _resource(text)
        raise NotFound(f"{rtype}/{rid} has no version {vid}")

    def history(self, rtype: str, rid: str, base_url: str = "urn:local-fhir") -> dict[str, Any]:
        """A history Bundle, newest version first; deletions appear as DELETE entries."""
        check_type(rtype)
        check_id(rid)
        versions = self._versions(rtype, rid)
        if not versions:
            raise NotFound(f"{rtype}/{rid} does not exist")
        entries = []
        for version, last_updated, deleted, text in versions:
            url = f"{rtype}/{rid}"
            entry: dict[str, Any] = {"fullUrl": f"{base_url}/{url}"}
            if deleted or text is None:
                entry["request"] = {"method": "DELETE", "url": url}
                entry["response"] = {"status": "204 No Content", "lastModified": last_updated}
            else:
                entry["resource"] = loads(text)
                entry["request"] = {
                    "method": "POST" if version == 1 else "PUT",
                    "url": rtype if version == 1 else url,
                }
                entry["response"] = {"status": "201 Created" if version == 1 else "200 OK",
                                     "etag": f'W/"{version}"', "lastModified": last_updated}  # fmt: skip
            entries.append(entry)
        return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}

    # -- search ----------------------------------------------------------------------------------
    def search(self, rtype: str, params: Mapping[str, str | Sequence[str]] | str | None = None,
               base_url: str = "urn:local-fhir") -> dict[str, Any]:  # fmt: skip
        """One page of results as a searchset Bundle (links `next`/`previous` for paging)."""
        check_type(rtype)
        if rtype not in self.registry.resource_types:
            raise UnsupportedSearch(f"{rtype!r} is not an R4 resource type")
        plan = self.builder.plan(rtype, params)
        from_sql, where, args = self._query_parts(plan)
        total = None
        if plan.total or plan.summary_count:
            total = self._read(f"SELECT count(*) FROM {from_sql} WHERE {where}", args)[0][0]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None:
            bundle["total"] = total
        if plan.summary_count:
            bundle["link"] = [
                {"relation": "self", "url": self._link(base_url, plan, plan.count, plan.offset)}
            ]
            return bundle
        order_sql, order_args = [], []
        for expr, expr_args, desc in plan.sort:
            order_sql.append(f"{expr} {'DESC' if desc else 'ASC'}")
            order_args += expr_args
        order_sql.append("r.rid")
        rows = self._read(
            f"SELECT r.rid, r.id, r.json FROM {from_sql} WHERE {where} ORDER BY {', '.join(order_sql)} LIMIT ? OFFSET ?",
            [*args, *order_args, plan.count + 1, plan.offset],
        )
        has_next = len(rows) > plan.count > 0  # _count=0 asks for the total only: no pages to follow
        rows = rows[: plan.count]
        links = [{"relation": "self", "url": self._link(base_url, plan, plan.count, plan.offset)}]
        if has_next:
            links.append(
                {"relation": "next", "url": self._link(base_url, plan, plan.count, plan.offset + plan.count)}
            )
        if plan.offset > 0:
            links.append({"relation": "previous",
                          "url": self._link(base_url, plan, plan.count, max(0, plan.offset - plan.count))})  # fmt: skip
        bundle["link"] = links
        entries = [
            {"fullUrl": f"{base_url}/{rtype}/{rid}", "resource": loads(text), "search": {"mode": "match"}}
            for _, rid, text in rows
        ]
        entries += self._included(plan, rows, base_url)
        bundle["entry"] = entries
        return bundle

    def _query_parts(self, plan: Plan) -> tuple[str, str, list[Any]]:
        drivers = [c for c in plan.clauses if c.driver_sql is not None]
        driver = min(drivers, key=lambda c: c.rank) if drivers else None
        args: list[Any] = []
        if driver is not None:
            from_sql = f"({driver.driver_sql}) d CROSS JOIN resources r ON r.rid = d.rid"
            args += driver.driver_args
        else:
            from_sql = "resources r"
        where = ["r.rtype = ?", "r.deleted = 0"]
        args += [plan.rtype]
        for clause in plan.clauses:
            if clause is driver:
                continue
            where.append(clause.exists_sql.format(rid="r.rid"))
            args += clause.exists_args
        return from_sql, " AND ".join(where), args

    @staticmethod
    def _link(base_url: str, plan: Plan, count: int, offset: int) -> str:
        from urllib.parse import urlencode

        query = urlencode([*plan.echo, ("_count", str(count)), ("_offset", str(offset))])
        return f"{base_url}/{plan.rtype}?{query}"

    def _included(self, plan: Plan, rows: list[tuple[Any, ...]], base_url: str) -> list[dict[str, Any]]:
        if not rows or not (plan.includes or plan.revincludes):
            return []
        seen = {(plan.rtype, rid) for _, rid, _ in rows}
        out: list[dict[str, Any]] = []

        def add(rtype: str, rid: str, text: str) -> None:
            if (rtype, rid) not in seen:
                seen.add((rtype, rid))
                out.append(
                    {
                        "fullUrl": f"{base_url}/{rtype}/{rid}",
                        "resource": loads(text),
                        "search": {"mode": "include"},
                    }
                )

        row_ids = [r[0] for r in rows]
        marks = ",".join("?" * len(row_ids))
        for src, code, target in plan.includes:
            sql = f"SELECT DISTINCT x.target_type, x.target_id FROM idx_reference x WHERE x.rid IN ({marks}) AND x.target_id IS NOT NULL"
            args: list[Any] = list(row_ids)
            if code != "*":
                which, which_args = param_sql(self.registry, "x", src, code)
                sql += f" AND {which}"
                args += which_args
            if target:
                sql += " AND x.target_type = ?"
                args.append(target)
            for ttype, tid in self._read(sql, args):
                for (text,) in self._read(
                    "SELECT json FROM resources WHERE rtype = ? AND id = ? AND deleted = 0", (ttype, tid)
                ):
                    add(ttype, tid, text)
        ids = [rid for _, rid, _ in rows]
        id_marks = ",".join("?" * len(ids))
        for src, code, target in plan.revincludes:
            if target and target != plan.rtype:
                continue
            sql = (f"SELECT DISTINCT r.rtype, r.id, r.json FROM idx_reference x JOIN resources r ON r.rid = x.rid "
                   f"WHERE x.rtype = ? AND x.target_id IN ({id_marks}) AND x.target_type = ? AND r.deleted = 0")  # fmt: skip
            args = [src, *ids, plan.rtype]
            if code != "*":
                which, which_args = param_sql(self.registry, "x", src, code)
                sql += f" AND {which}"
                args += which_args
            for rtype, rid, text in self._read(sql, args):
                add(rtype, rid, text)
        return out

    def search_ids(
        self, rtype: str, params: Mapping[str, str | Sequence[str]] | str, limit: int = 2
    ) -> list[str]:
        """Ids of the first `limit` matches (for conditional operations)."""
        check_type(rtype)
        pairs = [(k, v) for k, v in parse_params(params) if k not in ("_count", "_offset", "_sort")]
        plan = self.builder.plan(rtype, pairs)
        if plan.includes or plan.revincludes or plan.summary_count:
            raise UnsupportedSearch(
                "a conditional operation's criteria cannot use _include, _revinclude or _summary"
            )
        from_sql, where, args = self._query_parts(plan)
        return [
            r[0] for r in self._read(f"SELECT r.id FROM {from_sql} WHERE {where} LIMIT ?", [*args, limit])
        ]

    # -- bundles, import, compartment, export ----------------------------------------------------
    def process_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """A transaction (all or nothing) or a batch (an outcome per entry), as R4 describes."""
        from local_fhir.bundles import process_bundle

        result = process_bundle(self, bundle)
        observers.notify(
            self.path, interaction=str(bundle.get("type")), entries=len(bundle.get("entry") or [])
        )
        return result

    def import_paths(
        self,
        paths: Iterable[str | Path],
        on_progress: Callable[..., None] | None = None,
        workers: int | None = None,
        *,
        lenient: bool = False,
    ) -> ImportReport:
        """Load bundles (.json) and NDJSON (.ndjson, .ndjson.gz) files or folders of them.

        Each file is imported entirely or not at all; failures are reported, the rest carry on.
        `lenient`: a file's valid resources are stored and each invalid one is quarantined with
        its problems (`quarantine_list`), instead of the file failing."""
        from local_fhir.importer import import_paths

        report = import_paths(self, paths, on_progress, workers, lenient)
        observers.notify(
            self.path,
            interaction="import",
            resources=report.resources,
            files=len(report.files),
            failed_files=len(report.failed),
            lenient=lenient,
        )
        return report

    def patient_compartment(self, patient_id: str) -> list[dict[str, Any]]:
        """The Patient and every resource in its compartment (R4 CompartmentDefinition/patient)."""
        check_id(patient_id)
        out: list[dict[str, Any]] = []
        rows = self._read(
            "SELECT json FROM resources WHERE rtype = 'Patient' AND id = ? AND deleted = 0", (patient_id,)
        )
        if not rows:
            raise NotFound(f"Patient/{patient_id} does not exist")
        out.append(loads(rows[0][0]))
        candidates = self._read(
            "SELECT x.rtype, x.param, r.rid, r.json FROM idx_reference x JOIN resources r ON r.rid = x.rid "
            "WHERE x.target_id = ? AND x.target_type = 'Patient' AND r.deleted = 0 ORDER BY r.rid",
            (patient_id,),
        )
        seen: set[int] = set()
        for rtype, param, row_id, text in candidates:  # rows pointing at the Patient: stored names
            if row_id in seen or param not in self.registry.compartment_stored(rtype):
                continue
            if rtype == "Patient" and row_id is not None and loads(text).get("id") == patient_id:
                continue
            seen.add(row_id)
            out.append(loads(text))
        return out

    def export_ndjson(self, out_dir: str | Path) -> dict[str, int]:
        """Write the current version of every resource to <out_dir>/<Type>.ndjson. Returns counts."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        conn = self._conn()
        types = [
            r[0]
            for r in conn.execute("SELECT DISTINCT rtype FROM resources WHERE deleted = 0 ORDER BY rtype")
        ]
        for rtype in types:
            path = out / f"{rtype}.ndjson"
            n = 0
            with path.open("w", encoding="utf-8") as fh:
                for (text,) in conn.execute(
                    "SELECT json FROM resources WHERE rtype = ? AND deleted = 0 ORDER BY rid", (rtype,)
                ):
                    fh.write(text)
                    fh.write("\n")
                    n += 1
            counts[rtype] = n
        return counts

    def stats(self) -> dict[str, Any]:
        by_type = dict(
            self._read(
                "SELECT rtype, count(*) FROM resources WHERE deleted = 0 GROUP BY rtype ORDER BY rtype"
            )
        )
        deleted = self._read("SELECT count(*) FROM resources WHERE deleted = 1")[0][0]
        older = self._read("SELECT count(*) FROM history")[0][0]
        index_rows_total = sum(self._read(f"SELECT count(*) FROM idx_{t}")[0][0] for t in TABLES)
        return {
            "database": str(self.path),
            "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "resources": sum(by_type.values()),
            "by_type": by_type,
            "deleted": deleted,
            "versions": sum(by_type.values()) + deleted + older,
            "index_rows": index_rows_total,
        }

    def reindex(self) -> int:
        """Rebuild every index row from the stored JSON (after the definitions changed)."""
        pending: Pending = {}
        n = 0
        with self._writing() as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM idx_{table}")
            for row_id, rtype, text in conn.execute(
                "SELECT rid, rtype, json FROM resources WHERE deleted = 0"
            ).fetchall():
                for table, rows in index_rows(loads_exact(text), self.registry).items():
                    pending.setdefault(table, []).extend((row_id, rtype, *r) for r in rows)
                n += 1
                if n % 5000 == 0:
                    self._flush(conn, pending)
            self._flush(conn, pending)
            conn.execute(
                "INSERT OR REPLACE INTO store_info VALUES ('definitions', ?)", (_definitions_hash(),)
            )
        return n

    def analyze(self) -> None:
        """Refresh SQLite's planner statistics (after a large import)."""
        with self._write_lock:
            self._conn().execute("ANALYZE")
