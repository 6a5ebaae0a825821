"""transaction and batch Bundles (FHIR R4 http.html#transaction).

A transaction resolves every entry first (ids for POSTs, `ifNoneExist`, conditional PUT/DELETE,
`urn:uuid:` fullUrls and conditional references such as `Patient?identifier=system|value`),
rewrites the references, validates every resource and only then writes, all inside one SQLite
transaction: any failure rolls everything back. A batch runs each entry on its own and reports an
outcome per entry.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_fhir.errors import (
    Conflict,
    Duplicate,
    FhirStoreError,
    InvalidResource,
    UnprocessableResource,
    issue,
    operation_outcome,
)
from local_fhir.validation import problems

if TYPE_CHECKING:
    from local_fhir.store import Store, WriteSession

_METHODS = ("DELETE", "POST", "PUT", "GET")  # the order R4 processes a transaction in
_INSTANCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.*)$")
_TYPE_ONLY = re.compile(r"^([A-Z][A-Za-z]+)$")
_STATUS = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 400: "400 Bad Request", 404: "404 Not Found",
           405: "405 Method Not Allowed", 409: "409 Conflict", 410: "410 Gone", 412: "412 Precondition Failed",
           415: "415 Unsupported Media Type", 422: "422 Unprocessable Entity", 500: "500 Internal Server Error",
           503: "503 Service Unavailable"}  # fmt: skip


@dataclass
class Op:
    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None = None
    if_match: str | None = None
    rtype: str = ""
    id: str | None = None
    skip: bool = False  # ifNoneExist matched, or conditional delete found nothing
    left_out: bool = False  # invalid, put in the quarantine by a lenient import
    response: dict[str, Any] = field(default_factory=dict)
    result: Any = None


def _where(op: Op, part: str = "") -> str:
    return f"Bundle.entry[{op.index}]{part}"


def _parse_entries(bundle: Any) -> list[Op]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("expected a Bundle resource")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be a list")
    ops, errors = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(issue("entry must be an object", "structure", f"Bundle.entry[{i}]"))
            continue
        request = entry.get("request")
        if (
            not isinstance(request, dict)
            or request.get("method") not in _METHODS
            or not isinstance(request.get("url"), str)
        ):
            errors.append(issue("entry.request needs a method (GET, POST, PUT or DELETE) and a url", "required",
                                f"Bundle.entry[{i}].request"))  # fmt: skip
            continue
        resource = entry.get("resource")
        if request["method"] in ("POST", "PUT") and not isinstance(resource, dict):
            errors.append(
                issue(f"{request['method']} entry has no resource", "required", f"Bundle.entry[{i}].resource")
            )
            continue
        if_match = request.get("ifMatch")
        if isinstance(if_match, str):
            if_match = if_match.removeprefix("W/").strip('"')
        ops.append(Op(i, request["method"], request["url"].lstrip("/"), resource, entry.get("fullUrl"),
                      request.get("ifNoneExist"), if_match))  # fmt: skip
    if errors:
        raise InvalidResource(errors[0]["diagnostics"], operation_outcome(errors))
    return ops


def _refuse(op: Op, message: str) -> InvalidResource:
    return InvalidResource(message, _oo(message, _where(op, ".request.url")))


def _resolve_target(store: Store, op: Op, keep_ids: bool) -> None:
    """Decide which resource id each entry writes or deletes."""
    resource = op.resource or {}
    url = op.url.split("?", 1)[0] if op.method == "POST" else op.url
    if op.method == "POST":
        m = _TYPE_ONLY.match(url)
        if not m or m.group(1) != resource.get("resourceType"):
            raise _refuse(op, f"POST url {op.url!r} must be the resource's type")
        op.rtype = m.group(1)
        if op.if_none_exist:
            found = store.search_ids(op.rtype, op.if_none_exist)
            if len(found) > 1:
                raise Conflict(f"ifNoneExist {op.if_none_exist!r} matched more than one {op.rtype}")
            if found:
                op.id, op.skip = found[0], True
                return
        given = resource.get("id")
        op.id = given if keep_ids and isinstance(given, str) else str(uuid.uuid4())
        return
    if op.method == "GET":
        return
    m = _INSTANCE.match(url)
    if m:
        op.rtype, op.id = m.group(1), m.group(2)
    else:
        c = _CONDITIONAL.match(url)
        if not c:
            raise _refuse(op, f"cannot understand request url {op.url!r}")
        op.rtype = c.group(1)
        found = store.search_ids(op.rtype, c.group(2))
        if len(found) > 1:
            raise Conflict(f"conditional {op.method} {op.url!r} matched more than one resource")
        if found:
            op.id = found[0]
        elif op.method == "PUT":
            given = resource.get("id")
            op.id = given if isinstance(given, str) else str(uuid.uuid4())
        else:
            op.skip = True  # conditional delete with no match: nothing to do
    if op.method == "PUT":
        if resource.get("resourceType") != op.rtype:
            raise _refuse(op, f"PUT {op.url!r} carries a {resource.get('resourceType')!r}")
        if m and resource.get("id") not in (None, op.id):
            raise _refuse(op, f"PUT {op.url!r}: resource id {resource.get('id')!r} differs from the url")


def _oo(message: str, where: str) -> dict[str, Any]:
    return operation_outcome([issue(message, "invalid", where)])


def rewrite_references(value: Any, resolve: Callable[[str, str], str], where: str) -> Any:
    """A copy of `value` with every Reference.reference passed through `resolve`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                out[key] = resolve(item, where)
            elif isinstance(item, dict | list):
                out[key] = rewrite_references(item, resolve, where)
            else:
                out[key] = item
        return out
    if isinstance(value, list):
        return [rewrite_references(v, resolve, where) if isinstance(v, dict | list) else v for v in value]
    return value


def _reference_resolver(store: Store, mapping: dict[str, str]) -> Callable[[str, str], str]:
    cache: dict[str, str] = {}

    def resolve(ref: str, where: str) -> str:
        if ref in mapping:
            return mapping[ref]
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            raise InvalidResource(f"reference {ref!r} at {where} matches no entry's fullUrl in the bundle",
                                  _oo(f"unresolved reference {ref!r}", where))  # fmt: skip
        c = _CONDITIONAL.match(ref)
        if c:
            if ref not in cache:
                found = store.search_ids(c.group(1), c.group(2))
                if len(found) != 1:
                    what = "no" if not found else "more than one"
                    raise Conflict(f"conditional reference {ref!r} at {where} matched {what} resource",
                                   operation_outcome([issue(f"conditional reference {ref!r} matched {what} resource",
                                                            "not-found" if not found else "multiple-matches", where)]))  # fmt: skip
                cache[ref] = f"{c.group(1)}/{found[0]}"
            return cache[ref]
        return ref

    return resolve


def _prepare_resource(op: Op, resolve: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """Give a POST or PUT entry's resource its id and resolved references; return what is invalid in it."""
    where = _where(op, ".resource")
    op.resource = rewrite_references(op.resource, resolve, where)
    op.resource["id"] = op.id
    return problems(op.resource, where)


def _refuse_overlaps(ops: list[Op]) -> None:
    """R4: a transaction whose entries name one resource more than once fails (409 here)."""
    seen: dict[tuple[str, str], Op] = {}
    for op in ops:
        if op.method in ("POST", "PUT", "DELETE") and op.id and not op.skip:  # skip: nothing written
            first = seen.setdefault((op.rtype, op.id), op)
            if first is not op:
                message = (f"Bundle.entry[{first.index}] and Bundle.entry[{op.index}] both write "
                           f"{op.rtype}/{op.id}; a transaction names each resource once")  # fmt: skip
                raise Duplicate(message, operation_outcome([issue(message, "duplicate", _where(op))]))


def apply_transaction(writes: WriteSession, bundle: dict[str, Any], *, keep_ids: bool = False,
                      base_url: str = "urn:local-fhir",
                      quarantine: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] | None = None,
                      ) -> dict[str, Any]:  # fmt: skip
    """Run a transaction inside an open write session (the caller's block commits or rolls back).
    `keep_ids`: a load (import), which keeps the resources' ids and may repeat a resource.
    `quarantine` (a lenient import): an invalid resource is left out and appended there as
    (entry index, resource, its problems) instead of refusing the whole transaction."""
    store = writes.store
    ops = _parse_entries(bundle)
    for op in ops:
        _resolve_target(store, op, keep_ids)
    if not keep_ids:
        _refuse_overlaps(ops)
    mapping: dict[str, str] = {}
    for op in ops:
        if op.full_url and op.id and op.method in ("POST", "PUT"):
            mapping[op.full_url] = f"{op.rtype}/{op.id}"
    resolve = _reference_resolver(store, mapping)
    errors: list[dict[str, Any]] = []
    for op in ops:
        if op.method in ("POST", "PUT") and not op.skip:
            found = _prepare_resource(op, resolve)
            if found and quarantine is not None:
                quarantine.append((op.index, op.resource or {}, found))
                op.skip = op.left_out = True
                op.response = {"status": _STATUS[422], "outcome": operation_outcome(found)}
            else:
                errors += found
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UnprocessableResource(
            f"transaction refused: {errors[0]['diagnostics']} at {errors[0]['expression'][0]}{more}",
            operation_outcome(errors),
        )
    for method in _METHODS:
        for op in ops:
            if op.method != method:
                continue
            try:
                _execute(writes, op, base_url)
            except FhirStoreError as exc:
                raise type(exc)(f"{_where(op)} ({op.method} {op.url}): {exc}", exc.outcome) from exc
    return _response_bundle("transaction-response", ops)


def _execute(writes: WriteSession, op: Op, base_url: str) -> None:
    if op.left_out:
        return
    if op.method == "GET":
        writes.flush()  # searches must see this transaction's writes
        op.result = _get(writes.store, op.url, base_url)
        op.response = {"status": _STATUS[200]}
    elif op.method == "DELETE":
        if not op.skip:
            writes.delete(op.rtype, op.id)  # type: ignore[arg-type]
        op.response = {"status": _STATUS[204]}
    elif op.skip:  # POST with ifNoneExist that matched
        op.response = {"status": _STATUS[200], "location": f"{op.rtype}/{op.id}"}
    else:
        written = writes.put(op.resource, op.if_match)  # type: ignore[arg-type]
        version, created = written.version, written.created
        op.response = {
            "status": _STATUS[201 if created else 200],
            "location": f"{op.rtype}/{op.id}/_history/{version}",
            "etag": f'W/"{version}"',
            "lastModified": written.last_updated,
        }


def _get(store: Store, url: str, base_url: str) -> dict[str, Any]:
    path, _, query = url.partition("?")
    parts = path.split("/")
    if len(parts) == 1:
        return store.search(parts[0], query, base_url=base_url)
    if len(parts) == 2:
        return store.read(parts[0], parts[1])
    if len(parts) == 4 and parts[2] == "_history":
        return store.vread(parts[0], parts[1], parts[3])
    if len(parts) == 3 and parts[2] == "_history":
        return store.history(parts[0], parts[1], base_url)
    raise InvalidResource(f"cannot understand GET {url!r}")


def _batch(store: Store, bundle: dict[str, Any], base_url: str) -> dict[str, Any]:
    ops = _parse_entries(bundle)
    for op in ops:
        try:
            with store.write_session() as writes:
                _resolve_target(store, op, keep_ids=False)
                if op.method in ("POST", "PUT") and not op.skip:
                    found = _prepare_resource(op, _reference_resolver(store, {}))
                    if found:
                        raise UnprocessableResource(
                            f"{found[0]['diagnostics']} at {found[0]['expression'][0]}",
                            operation_outcome(found),
                        )
                _execute(writes, op, base_url)
        except FhirStoreError as exc:
            op.response = {"status": _STATUS.get(exc.status, f"{exc.status}"), "outcome": exc.outcome}
            op.result = None
    return _response_bundle("batch-response", ops)


def _response_bundle(bundle_type: str, ops: list[Op]) -> dict[str, Any]:
    """The response Bundle: an entry per request entry, in order, with what it returned."""
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"response": op.response, **({"resource": op.result} if op.result is not None else {})}
            for op in ops
        ],
    }


def process_bundle(store: Store, bundle: dict[str, Any], base_url: str = "urn:local-fhir") -> dict[str, Any]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("expected a Bundle with type transaction or batch")
    kind = bundle.get("type")
    if kind == "batch":
        return _batch(store, bundle, base_url)
    if kind != "transaction":
        raise InvalidResource(f"Bundle.type is {kind!r}; only transaction and batch Bundles can be processed "
                              "(load other Bundles with import)")  # fmt: skip
    with store.write_session() as writes:
        return apply_transaction(writes, bundle, base_url=base_url)
