"""An optional FHIR R4 REST facade over a Store (starlette), for `local-fhir serve` on loopback.

Interactions: read, vread, history, search (GET and POST _search), create, update, delete,
transaction/batch at the base, Patient/{id}/$everything and /metadata.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local_fhir.errors import FhirStoreError, InvalidResource, issue, operation_outcome
from local_fhir.store import Store

FHIR_JSON = "application/fhir+json"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return Response(text, status_code=status, media_type=FHIR_JSON, headers=headers)


def _error(exc: FhirStoreError) -> Response:
    return _json(exc.outcome, exc.status)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidResource(f"the request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidResource("the request body must be a JSON object")
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
        resources.append({
            "type": rtype,
            "interaction": [{"code": c} for c in ("read", "vread", "update", "delete", "history-instance", "create", "search-type")],
            "versioning": "versioned",
            "updateCreate": True,
            "conditionalCreate": True,
            "searchParam": params,
        })  # fmt: skip
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
            }
        ],
    }


def make_app(store: Store) -> Starlette:
    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except FhirStoreError as exc:
                return _error(exc)

        return endpoint

    async def metadata(request: Request) -> Response:
        return _json(capability_statement(store))

    async def base(request: Request) -> Response:
        return _json(store.process_bundle(await _body(request)))

    async def type_level(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        if request.method == "GET":
            return _json(store.search(rtype, str(request.url.query), base_url=_base(request)))
        resource = await _body(request)
        if resource.get("resourceType") != rtype:
            raise InvalidResource(f"POST /{rtype} carries a {resource.get('resourceType')!r}")
        stored = store.create(resource)
        location = f"{_base(request)}/{rtype}/{stored['id']}/_history/{stored['meta']['versionId']}"
        return _json(stored, 201, {"Location": location, "ETag": f'W/"{stored["meta"]["versionId"]}"'})

    async def search_post(request: Request) -> Response:
        # The body is application/x-www-form-urlencoded (R4 http.html#search); URL parameters add to it.
        body = (await request.body()).decode("utf-8", errors="replace")
        query = "&".join(part for part in (body, str(request.url.query)) if part)
        return _json(store.search(request.path_params["rtype"], query, base_url=_base(request)))

    async def instance(request: Request) -> Response:
        rtype, rid = request.path_params["rtype"], request.path_params["rid"]
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
        existed = True
        try:
            store.read(rtype, rid)
        except FhirStoreError:
            existed = False
        stored = store.update(resource, if_match=if_match.removeprefix("W/").strip('"') if if_match else None)
        return _json(stored, 200 if existed else 201, {"ETag": f'W/"{stored["meta"]["versionId"]}"'})

    async def history(request: Request) -> Response:
        return _json(store.history(request.path_params["rtype"], request.path_params["rid"], _base(request)))

    async def vread(request: Request) -> Response:
        p = request.path_params
        return _json(store.vread(p["rtype"], p["rid"], p["vid"]))

    async def everything(request: Request) -> Response:
        base_url = _base(request)
        resources = store.patient_compartment(request.path_params["rid"])
        entries = [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                   for r in resources]  # fmt: skip
        return _json({"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries})

    routes = [
        Route("/metadata", guarded(metadata), methods=["GET"]),
        Route("/", guarded(base), methods=["POST"]),
        Route("/Patient/{rid}/$everything", guarded(everything), methods=["GET"]),
        Route("/{rtype}/_search", guarded(search_post), methods=["POST"]),
        Route("/{rtype}/{rid}/_history/{vid}", guarded(vread), methods=["GET"]),
        Route("/{rtype}/{rid}/_history", guarded(history), methods=["GET"]),
        Route("/{rtype}/{rid}", guarded(instance), methods=["GET", "PUT", "DELETE"]),
        Route("/{rtype}", guarded(type_level), methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)


def serve(store: Store, port: int = 8080) -> None:
    """Serve on 127.0.0.1 only: the facade has no authentication, so it never listens on a network."""
    import uvicorn

    uvicorn.run(make_app(store), host="127.0.0.1", port=port, log_level="warning")
