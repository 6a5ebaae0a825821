"""An optional FHIR R4 REST facade over a Store (starlette), for `local-fhir serve` on loopback.

Interactions: read, vread, history, search (GET and POST _search), create, update, delete,
transaction/batch at the base, `$validate` (system, type and instance level),
Patient/{id}/$everything and /metadata.

Protocol (R4 http.html): `POST /[type]` assigns the id (a client id in the body is ignored);
request bodies are JSON (`application/fhir+json` or `application/json`; anything else is 415) and
numbers keep their digits; every error is an OperationOutcome with its status: 400 (not JSON, a
url or parameter the store cannot take, an unsupported operation, JSON nested too deeply), 404 (no
such resource, type or endpoint), 405 (a method the endpoint does not take), 409 (a create of an
existing resource, a transaction naming a resource twice), 410 (deleted), 412 (If-Match or a
conditional criterion failed), 415 (not JSON) and 422 (JSON that is not valid R4). An unknown
`$operation` is refused as not supported, never taken as a resource type or id.

Every request passes `Guard` first (a web page open in a browser on this computer can reach a
loopback port: it must not be able to read or change records), in this order:
- Host: one of localhost, 127.0.0.1, [::1] (and the port served), else 421: DNS rebinding (a name
  the attacker controls, pointed at 127.0.0.1) cannot reach the store.
- Origin: absent (not a browser) or the server's own, else 403.
- `Authorization: Bearer <token>`, compared in constant time, else 401 with `WWW-Authenticate`.
- A body (POST, PUT, PATCH) must say it is JSON (`application/fhir+json` or `application/json`,
  charset allowed; `application/x-www-form-urlencoded` for `POST [type]/_search`), else 415: a
  `text/plain` form post from a page (a CORS "simple request", sent without asking) never runs.
- A body larger than `max_body` is 413, refused from its Content-Length before any of it is read,
  or as soon as a body without one passes the limit (the connection is then closed).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_fhir.errors import (
    FhirStoreError,
    InvalidResource,
    NotFound,
    NotSupported,
    issue,
    operation_outcome,
)
from local_fhir.jsontext import TooDeep, dumps, loads_exact
from local_fhir.operations import unwrap_parameters
from local_fhir.store import Store

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = ("application/fhir+json", "application/json")
_FORM = "application/x-www-form-urlencoded"
_STATUS_CODES = {404: "not-found", 405: "not-supported", 415: "not-supported"}
DEFAULT_MAX_BODY = 10 * 1024 * 1024  # bytes; a transaction of a few thousand resources
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
TOKEN_ENV = "LOCAL_FHIR_TOKEN"
_OPERATIONS = {"system": ("$validate",), "type": ("$validate",), "instance": ("$validate", "$everything")}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else dumps(body)
    return Response(text, status_code=status, media_type=FHIR_JSON, headers=headers)


def _outcome(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    return _json(operation_outcome([issue(message, code)]), status, headers)


def _error(exc: FhirStoreError) -> Response:
    return _json(exc.outcome, exc.status)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class UnsupportedMediaType(InvalidResource):
    status = 415
    code = "not-supported"


class BodyTooDeep(InvalidResource):
    """JSON nested more deeply than `jsontext.MAX_DEPTH`: a refused request (400), never a verdict."""

    code = "too-costly"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_media_type(request: Request, allowed: tuple[str, ...] = _JSON_TYPES) -> None:
    """A body's Content-Type must be JSON (`Guard` refuses a body without one)."""
    given = _media_type(request.headers.get("content-type", ""))
    if given and given not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {given!r} is not supported: send FHIR JSON ({FHIR_JSON})"
        )


async def _raw_body(request: Request) -> Any:
    _check_media_type(request)
    raw = await request.body()
    if not raw.strip():
        raise InvalidResource("the request has no body")
    try:
        return loads_exact(raw)  # decimals keep their digits: what is stored is what was sent
    except TooDeep as exc:
        raise BodyTooDeep(f"the request body is refused: {exc}") from None
    except ValueError as exc:
        raise InvalidResource(f"the request body is not JSON: {exc}") from None


# -- the guard in front of every request ----------------------------------------------------------
def read_or_create_token(path: Path) -> str:
    """The token in `path` (its first line), or a fresh one written there, readable by the owner
    only (0600, created exclusively). A file others can read is refused (POSIX)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} can be read by other users: chmod 600 it (or delete it for a new token)")
        lines = path.read_text(encoding="utf-8").splitlines()
        token = lines[0].strip() if lines else ""
        if len(token) < 16:
            raise ValueError(f"{path} holds no token (at least 16 characters on its first line)")
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


def _host_names(hosts: tuple[str, ...], port: int | None) -> tuple[frozenset[str], frozenset[str]]:
    """Host header values and Origin values that name this server."""
    names = {h.lower() for h in hosts}
    if port is None:  # any port (in-process clients)
        return frozenset(names), frozenset()
    with_port = {f"{h}:{port}" for h in names}
    allowed_hosts = with_port | (names if port == 80 else set())
    origins = {f"http://{h}" for h in allowed_hosts}
    return frozenset(allowed_hosts), frozenset(origins)


class Guard:
    """ASGI middleware: Host, Origin, bearer token, Content-Type and body size (module docstring).
    Each refusal is an OperationOutcome, given before the application sees the request."""

    def __init__(self, app: ASGIApp, token: str, *, max_body: int = DEFAULT_MAX_BODY,
                 hosts: tuple[str, ...] = LOOPBACK_HOSTS, port: int | None = None):  # fmt: skip
        if len(token) < 16:
            raise ValueError("the token must have at least 16 characters")
        self.app, self.max_body, self.port = app, max_body, port
        self._token = token.encode()
        self._hosts, self._origins = _host_names(tuple(hosts), port)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").strip().lower()
        if (host if self.port is not None else _without_port(host)) not in self._hosts:
            return _outcome(421, f"Host {host!r} is not this server (DNS rebinding is refused): use "
                                 f"http://127.0.0.1:{self.port or 'PORT'}/", "forbidden")  # fmt: skip
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin.strip().lower(), host):
            return _outcome(403, f"cross-origin requests are refused (Origin {origin!r})", "forbidden")
        given = headers.get("authorization", "").strip()
        scheme, _, credentials = given.partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("latin-1"), self._token)):
            what = "a wrong token" if given else "no token"
            return _outcome(401, f"authentication required ({what}): send Authorization: Bearer <token> "
                                 "(the token file `local-fhir serve` names)", "login",
                            {"WWW-Authenticate": 'Bearer realm="local-fhir"'})  # fmt: skip
        has_body = int(headers.get("content-length", "0") or "0") > 0 or "transfer-encoding" in headers
        if scope["method"] in ("POST", "PUT", "PATCH") and has_body:
            given_type = _media_type(headers.get("content-type", ""))
            allowed = _JSON_TYPES + ((_FORM,) if scope["path"].endswith("/_search") else ())
            if given_type not in allowed:
                return _outcome(415, f"Content-Type {given_type or '(none)'!r} is refused: a body must be "
                                     f"{FHIR_JSON} or application/json", "not-supported")  # fmt: skip
        if int(headers.get("content-length", "0") or "0") > self.max_body:
            return self._too_large()
        return None

    def _same_origin(self, origin: str, host: str) -> bool:
        if self.port is not None:
            return origin in self._origins
        return origin == f"http://{host}"  # any port: the origin must name the Host it was sent to

    def _too_large(self) -> Response:
        return _outcome(413, f"the request body is larger than {self.max_body:,} bytes (the limit)",
                        "too-costly", {"Connection": "close"})  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            else:  # no websockets
                await send({"type": "websocket.close", "code": 1008})
            return
        try:
            refusal = self._refusal(scope)
        except ValueError:  # a Content-Length that is not a number
            refusal = _outcome(400, "the Content-Length header is not a number", "invalid")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:  # read within the limit, the whole body before the application runs
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._too_large()(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _body(request: Request) -> dict[str, Any]:
    doc = await _raw_body(request)
    if not isinstance(doc, dict):
        raise InvalidResource("the request body must be a JSON object (a FHIR resource)")
    return doc


def capability_statement(store: Store) -> dict[str, Any]:
    resources = []
    for rtype in sorted(store.registry.resource_types):
        params = [
            {"name": code, "type": p.type}
            for code, p in sorted(store.registry.params(rtype).items())
            if p.expression is not None
        ]
        params = [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}, *params]
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in ("read", "vread", "update", "delete", "history-instance", "create", "search-type")],
            "versioning": "versioned",
            "updateCreate": True,
            "conditionalCreate": True,
            "searchParam": params,
            "operation": [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}],
        }  # fmt: skip
        if rtype == "Patient":
            entry["operation"].append(
                {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
            )
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "software": {"name": "local_fhir"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
                ],
            }
        ],
    }


class MethodNotAllowed(NotSupported):
    status = 405


def _unsupported_operation(name: str, level: str) -> NotSupported:
    known = ", ".join(_OPERATIONS[level])
    return NotSupported(f"the operation {name} is not supported at {level} level (supported: {known})")


def make_app(store: Store, *, token: str, max_body: int = DEFAULT_MAX_BODY, port: int | None = None,
             hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> ASGIApp:  # fmt: skip
    """The facade behind its `Guard`: every request needs `Authorization: Bearer <token>`, a Host
    in `hosts` (with `port`, when given) and a body no larger than `max_body` bytes."""
    return Guard(_routes(store), token, max_body=max_body, hosts=hosts, port=port)


def _routes(store: Store) -> Starlette:
    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except FhirStoreError as exc:
                return _error(exc)

        return endpoint

    def known_type(rtype: str) -> str:
        if rtype.startswith("$"):
            raise _unsupported_operation(rtype, "system")
        if rtype not in store.registry.resource_types:
            raise NotFound(f"{rtype!r} is not a resource type this server knows (R4 resource types)")
        return rtype

    async def validate(request: Request, rtype: str | None = None, rid: str | None = None) -> Response:
        try:
            body = await _raw_body(request)
        except (UnsupportedMediaType, BodyTooDeep):
            raise
        except InvalidResource as exc:  # not JSON: the verdict is a fatal issue, not a failed call
            return _json(operation_outcome([issue(str(exc), "structure", severity="fatal")]))
        resource, mode, profile = unwrap_parameters(body)
        mode = mode or request.query_params.get("mode")
        profile = profile or request.query_params.get("profile")
        return _json(store.validate(resource, mode=mode, rtype=rtype, rid=rid, profile=profile))

    async def metadata(request: Request) -> Response:
        return _json(capability_statement(store))

    async def base(request: Request) -> Response:
        return _json(store.process_bundle(await _body(request)))

    async def system_operation(request: Request) -> Response:
        name = request.path_params["op"]
        if name == "$validate" and request.method == "POST":
            return await validate(request)
        raise _unsupported_operation(name, "system")

    async def type_level(request: Request) -> Response:
        rtype = known_type(request.path_params["rtype"])
        if request.method == "GET":
            return _json(store.search(rtype, str(request.url.query), base_url=_base(request)))
        resource = await _body(request)
        if resource.get("resourceType") != rtype:
            raise InvalidResource(f"POST /{rtype} carries a {resource.get('resourceType')!r}")
        resource = {k: v for k, v in resource.items() if k != "id"}  # R4: the server assigns the id
        written = store.write(resource, create=True)
        stored = loads_exact(written.text)
        location = f"{_base(request)}/{rtype}/{stored['id']}/_history/{written.version}"
        return _json(written.text, 201, {"Location": location, "ETag": f'W/"{written.version}"',
                                         "Last-Modified": written.last_updated})  # fmt: skip

    async def search_post(request: Request) -> Response:
        # The body is application/x-www-form-urlencoded (R4 http.html#search); URL parameters add to it.
        rtype = known_type(request.path_params["rtype"])
        _check_media_type(request, (_FORM,))
        body = (await request.body()).decode("utf-8", errors="replace")
        query = "&".join(part for part in (body, str(request.url.query)) if part)
        return _json(store.search(rtype, query, base_url=_base(request)))

    async def type_operation(request: Request) -> Response:
        rtype, name = known_type(request.path_params["rtype"]), request.path_params["rid"]
        if name == "$validate" and request.method == "POST":
            return await validate(request, rtype)
        raise _unsupported_operation(name, "type")

    async def instance(request: Request) -> Response:
        rid = request.path_params["rid"]
        if rid.startswith("$"):
            return await type_operation(request)
        rtype = known_type(request.path_params["rtype"])
        if request.method == "POST":
            raise MethodNotAllowed(f"POST /{rtype}/{rid}: create with POST /{rtype}, update with PUT")
        if request.method == "GET":
            return _json(store.read_text(rtype, rid))
        if request.method == "DELETE":
            store.delete(rtype, rid)
            return Response(status_code=204)
        resource = await _body(request)
        if resource.get("resourceType") != rtype or resource.get("id") != rid:
            raise InvalidResource(f"PUT /{rtype}/{rid} must carry a {rtype} with id {rid}",
                                  operation_outcome([issue("resourceType/id differ from the url", "invalid", f"{rtype}.id")]))  # fmt: skip
        if_match = request.headers.get("if-match")
        written = store.write(resource, if_match=if_match.removeprefix("W/").strip('"') if if_match else None)
        headers = {"ETag": f'W/"{written.version}"', "Last-Modified": written.last_updated}
        if written.created:
            headers["Location"] = f"{_base(request)}/{rtype}/{rid}/_history/{written.version}"
        return _json(written.text, 201 if written.created else 200, headers)

    async def instance_operation(request: Request) -> Response:
        p = request.path_params
        rtype, rid, name = known_type(p["rtype"]), p["rid"], p["op"]
        if rid.startswith("$"):
            raise _unsupported_operation(f"{rid}/{name}", "type")
        if not name.startswith("$"):
            raise NotFound(f"/{rtype}/{rid}/{name} is not an endpoint of this server")
        if name == "$validate" and request.method == "POST":
            return await validate(request, rtype, rid)
        if name == "$everything" and rtype == "Patient" and request.method == "GET":
            return everything(request, rid)
        raise _unsupported_operation(name, "instance")

    async def history(request: Request) -> Response:
        rtype = known_type(request.path_params["rtype"])
        return _json(store.history(rtype, request.path_params["rid"], _base(request)))

    async def vread(request: Request) -> Response:
        p = request.path_params
        return _json(store.vread(known_type(p["rtype"]), p["rid"], p["vid"]))

    def everything(request: Request, rid: str) -> Response:
        base_url = _base(request)
        resources = store.patient_compartment(rid)
        entries = [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                   for r in resources]  # fmt: skip
        return _json({"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries})

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (no such route, a method the route does not take) as OperationOutcomes."""
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 404:
            message = f"{request.url.path} is not an endpoint of this server"
        else:
            message = str(exc.detail)
        code = _STATUS_CODES.get(exc.status_code, "processing")
        return _outcome(exc.status_code, message, code, dict(exc.headers or {}))

    async def single_segment(request: Request) -> Response:
        """`/[type]` and `/$operation` share one pattern: the `$` tells them apart."""
        name = request.path_params["op"]
        if name.startswith("$"):
            return await system_operation(request)
        request.path_params["rtype"] = name
        return await type_level(request)

    routes = [
        Route("/metadata", guarded(metadata), methods=["GET"]),
        Route("/", guarded(base), methods=["POST"]),
        Route("/{rtype}/_search", guarded(search_post), methods=["POST"]),
        Route("/{rtype}/{rid}/_history/{vid}", guarded(vread), methods=["GET"]),
        Route("/{rtype}/{rid}/_history", guarded(history), methods=["GET"]),
        Route("/{rtype}/{rid}/{op}", guarded(instance_operation), methods=["GET", "POST"]),
        Route("/{rtype}/{rid}", guarded(instance), methods=["GET", "PUT", "DELETE", "POST"]),
        Route("/{op}", guarded(single_segment), methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def serve(store: Store, token: str, port: int = 8080, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Serve on 127.0.0.1 only (the token keeps other users and web pages out; the network is not
    a place for it: no TLS)."""
    import uvicorn

    app = make_app(store, token=token, max_body=max_body, port=port)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)
