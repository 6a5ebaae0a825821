"""The REST facade's guard (#16): the attacks a web page or another local user could make, each
refused with an OperationOutcome, in process (starlette's TestClient, the guard called as ASGI)
and against `local-fhir serve` itself (a real socket: a body refused before it was sent)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fhir_builders import patient
from starlette.responses import Response
from starlette.testclient import TestClient

from local_fhir import Store
from local_fhir.cli import main
from local_fhir.server import Guard, make_app, read_or_create_token

TOKEN = "security-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FHIR = {"Content-Type": "application/fhir+json"}
DELETE_P1 = {"resourceType": "Bundle", "type": "transaction",
             "entry": [{"request": {"method": "DELETE", "url": "Patient/p1"}}]}  # fmt: skip


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    store.create(patient("p1", "Thompson"))
    app = make_app(store, token=TOKEN, max_body=64 * 1024, port=8080)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return body["issue"][0]


def _nested(depth: int) -> dict[str, Any]:
    """A Patient whose extension nests `depth` levels (each level an array and an object)."""
    ext: dict[str, Any] = {"url": "http://example.org/e", "valueString": "leaf"}
    for _ in range(depth):
        ext = {"url": "http://example.org/e", "extension": [ext]}
    return {"resourceType": "Patient", "extension": [ext]}


# -- CSRF: a page's text/plain form post --------------------------------------------------------
def test_csrf_text_plain_transaction_is_refused_and_the_patient_stays(api: TestClient, store: Store) -> None:
    body = json.dumps(DELETE_P1).encode()
    # what a page can send without a CORS preflight: text/plain, its own Origin, no token
    page = api.post(
        "/", content=body, headers={"Content-Type": "text/plain", "Origin": "http://evil.example"}
    )
    assert _outcome(page, 403)["code"] == "forbidden"
    no_origin = api.post("/", content=body, headers={"Content-Type": "text/plain"})
    assert _outcome(no_origin, 401)["code"] == "login"
    # even holding the token, a body that does not say it is JSON is never parsed
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None):  # fmt: skip
        headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
        response = api.post("/", content=body, headers=headers)
        assert _outcome(response, 415)["code"] == "not-supported", content_type
    assert store.read("Patient", "p1")["name"][0]["family"] == "Thompson"
    # the same transaction as JSON, with the token, is what deletes it
    assert api.post("/", json=DELETE_P1, headers=AUTH).status_code == 200
    assert api.get("/Patient/p1", headers=AUTH).status_code == 410


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json; charset=utf-8",
                                          "Application/FHIR+JSON;charset=UTF-8"])  # fmt: skip
def test_json_bodies_are_taken(api: TestClient, content_type: str) -> None:
    response = api.post("/Patient", content=json.dumps(patient("x", "Okafor")).encode(),
                        headers={**AUTH, "Content-Type": content_type})  # fmt: skip
    assert response.status_code == 201, response.text


# -- the token --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["/metadata", "/Patient/p1", "/Patient?name=thompson", "/Patient/p1/$everything"]
)
def test_a_request_without_the_token_is_refused(api: TestClient, url: str) -> None:
    response = api.get(url)
    assert _outcome(response, 401)["code"] == "login"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Thompson" not in response.text
    for wrong in ("Bearer wrong-token-0123456789abc", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert api.get(url, headers={"Authorization": wrong}).status_code == 401, wrong
    assert api.get(url, headers=AUTH).status_code == 200


def test_writes_without_the_token_change_nothing(api: TestClient, store: Store) -> None:
    assert _outcome(api.delete("/Patient/p1"), 401)
    assert _outcome(api.put("/Patient/p1", json=patient("p1", "Changed")), 401)
    assert _outcome(api.post("/Patient", json=patient("x", "New")), 401)
    assert store.read("Patient", "p1")["name"][0]["family"] == "Thompson" and store.stats()["resources"] == 1


def test_the_token_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = read_or_create_token(path)
    assert len(token) >= 32 and path.read_text().strip() == token
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert read_or_create_token(path) == token  # the next serve uses the same one
    if os.name == "posix":
        path.chmod(0o644)
        with pytest.raises(PermissionError, match="chmod 600"):
            read_or_create_token(path)
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(ValueError, match="no token"):
        read_or_create_token(short)
    with pytest.raises(ValueError):
        Guard(make_app, "short")  # type: ignore[arg-type]


def test_serve_help_describes_the_token() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for words in (
        "Authorization: Bearer TOKEN",
        "--token-file",
        "LOCAL_FHIR_TOKEN",
        "--max-body",
        "0600",
        "413",
    ):
        assert words in text, words


# -- DNS rebinding: the Host header --------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example:8080",
                                  "127.0.0.1:9999", "localhost:80", "", "127.0.0.1:8080@evil.example"])  # fmt: skip
def test_a_forged_host_is_refused(api: TestClient, host: str) -> None:
    response = api.get("/Patient/p1", headers={**AUTH, "Host": host})
    assert _outcome(response, 421)["code"] == "forbidden"
    assert "Thompson" not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"])
def test_loopback_hosts_with_the_port_are_taken(api: TestClient, host: str) -> None:
    assert api.get("/Patient/p1", headers={**AUTH, "Host": host}).status_code == 200


# -- Origin -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8080"]
)
def test_a_cross_origin_request_is_refused(api: TestClient, origin: str) -> None:
    response = api.get("/Patient/p1", headers={**AUTH, "Origin": origin})
    assert _outcome(response, 403)["code"] == "forbidden"
    assert "Thompson" not in response.text


def test_the_servers_own_origin_is_taken(api: TestClient) -> None:
    assert api.get("/Patient/p1", headers={**AUTH, "Origin": "http://127.0.0.1:8080"}).status_code == 200


# -- body size ----------------------------------------------------------------------------------------
def test_a_body_over_the_limit_is_413(api: TestClient, store: Store) -> None:
    huge = json.dumps(patient("p1", "X" * (100 * 1024))).encode()  # limit in this app: 64 KiB
    response = api.put("/Patient/p1", content=huge, headers={**AUTH, **FHIR})
    assert _outcome(response, 413)["code"] == "too-costly"
    assert store.read("Patient", "p1")["name"][0]["family"] == "Thompson"
    assert api.put("/Patient/p1", json=patient("p1", "Y" * 1000), headers=AUTH).status_code == 200


def _run_asgi(app: Any, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]) -> tuple[int, int, bool]:
    """Call an ASGI app with a streamed body; (status, chunks it asked for, whether more were left)."""
    import anyio

    asked = 0
    status = 0
    left = True

    async def receive() -> dict[str, Any]:
        nonlocal asked, left
        asked += 1
        chunk = next(chunks, None)
        if chunk is None:
            left = False
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": "/Patient", "raw_path": b"/Patient", "query_string": b"",
             "headers": headers, "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 5000), "root_path": ""}  # fmt: skip
    anyio.run(app, scope, receive, send)
    return status, asked, left


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    reached = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await Response("ok")(scope, receive, send)

    guard = Guard(inner, TOKEN, max_body=10_000, port=8080)
    headers = [(b"host", b"127.0.0.1:8080"), (b"authorization", AUTH["Authorization"].encode()),
               (b"content-type", b"application/fhir+json"), (b"transfer-encoding", b"chunked")]  # fmt: skip
    endless = (b"x" * 1000 for _ in range(1_000_000))  # a gigabyte, were it all read
    status, asked, left = _run_asgi(guard, headers, endless)
    assert status == 413 and asked == 11 and left and not reached  # 11 KB read, then refused
    # a declared Content-Length over the limit: refused before a byte of the body is read
    declared = [*headers[:3], (b"content-length", b"20971520")]
    status, asked, left = _run_asgi(guard, declared, (b"x" * 1000 for _ in range(100)))
    assert (status, asked, reached) == (413, 0, [])
    # under the limit, the application gets the whole body
    status, asked, left = _run_asgi(guard, headers, (b"x" * 1000 for _ in range(5)))
    assert (status, left, reached) == (200, False, ["/Patient"])


# -- deeply nested JSON --------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "method"), [("/Patient", "POST"), ("/", "POST"), ("/Patient/p1", "PUT"),
                                             ("/Patient/$validate", "POST")])  # fmt: skip
@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, json.dumps(_nested(60)).encode(),
                                  b'{"resourceType":"Bundle","type":"transaction","entry":' + b"[" * 5000])  # fmt: skip
def test_deeply_nested_json_is_a_4xx_outcome(
    api: TestClient, store: Store, url: str, method: str, body: bytes
) -> None:
    response = api.request(method, url, content=body, headers={**AUTH, **FHIR})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert store.stats()["resources"] == 1 and store.read("Patient", "p1")["name"][0]["family"] == "Thompson"


def test_nesting_within_the_limit_is_taken(api: TestClient) -> None:
    response = api.post("/Patient", json=_nested(45), headers=AUTH)
    assert response.status_code == 201, response.text


# -- `local-fhir serve` itself ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str, str]]:
    """(base url, port, token, stderr so far) of `local-fhir serve --max-body 1048576`."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / "fhir.sqlite3"
    with Store(db, create=True) as store:
        store.create(patient("p1", "Thompson"))
    token_file = folder / "serve.token"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_FHIR_TOKEN"}
    log = folder / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_fhir", "serve", "--db", str(db), "--port", str(port),
             "--token-file", str(token_file), "--max-body", "1048576"],
            stderr=err, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            if token_file.exists():
                try:
                    httpx.get(f"{base}/metadata", timeout=2)
                    break
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        yield base, port, token_file.read_text().strip(), log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_creates_the_token_file_and_names_it_not_the_token(served: tuple[str, int, str, str]) -> None:
    base, port, token, log = served
    assert len(token) >= 32 and token not in log and "serve.token (created" in log
    token_file = next(p for p in log.split() if p.endswith("serve.token"))
    if os.name == "posix":
        assert Path(token_file).stat().st_mode & 0o777 == 0o600
    assert httpx.get(f"{base}/Patient/p1", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_served_without_token_and_with_a_forged_host(served: tuple[str, int, str, str]) -> None:
    base, port, token, _ = served
    assert _outcome(httpx.get(f"{base}/Patient/p1"), 401)
    rebound = httpx.get(
        f"{base}/Patient/p1", headers={"Authorization": f"Bearer {token}", "Host": f"evil.example:{port}"}
    )
    assert _outcome(rebound, 421)
    text_plain = httpx.post(f"{base}/", content=json.dumps(DELETE_P1).encode(),
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})  # fmt: skip
    assert _outcome(text_plain, 415)
    assert httpx.get(f"{base}/Patient/p1", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _response_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_served_huge_body_is_413_before_it_is_sent(served: tuple[str, int, str, str]) -> None:
    _, port, token, _ = served
    head = (f"POST /Patient HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/fhir+json\r\nContent-Length: 20971520\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b'{"resourceType":"Patient"')  # 20 MB announced, 25 bytes sent
        answer = _response_head(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"OperationOutcome" in answer or b"content-length" in answer.lower()


def test_served_chunked_body_is_413_once_past_the_limit(served: tuple[str, int, str, str]) -> None:
    _, port, token, _ = served
    head = (f"POST /Patient HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()  # fmt: skip
    piece = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # exactly the limit (1 MiB), then one byte more, and no end: the server answers without it.
        # The byte over is the last one sent, so the server has read everything when it closes.
        sock.sendall(head + piece * 16 + b"1\r\nx\r\n")
        answer = _response_head(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_serve_takes_the_token_from_the_file_the_environment_or_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import local_fhir.server

    served: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        local_fhir.server,
        "serve",
        lambda store, token, port, max_body: served.append((token, port, max_body)),
    )
    db = tmp_path / "fhir.sqlite3"
    Store(db, create=True).close()
    runner = CliRunner()
    monkeypatch.delenv("LOCAL_FHIR_TOKEN", raising=False)
    beside = runner.invoke(main, ["serve", "--db", str(db)])
    assert beside.exit_code == 0, beside.output
    default_file = tmp_path / "fhir.sqlite3.token"
    assert served[-1] == (default_file.read_text().strip(), 8080, 10 * 1024 * 1024)
    assert served[-1][0] not in beside.output and str(default_file) in beside.output
    monkeypatch.setenv("LOCAL_FHIR_TOKEN", TOKEN)
    assert (
        runner.invoke(main, ["serve", "--db", str(db), "--port", "9000", "--max-body", "2048"]).exit_code == 0
    )
    assert served[-1] == (TOKEN, 9000, 2048)
    explicit = tmp_path / "explicit.token"
    assert runner.invoke(main, ["serve", "--db", str(db), "--token-file", str(explicit)]).exit_code == 0
    assert served[-1][0] == explicit.read_text().strip() != TOKEN  # the file wins over the environment
    if os.name == "posix":
        explicit.chmod(0o640)
        refused = runner.invoke(main, ["serve", "--db", str(db), "--token-file", str(explicit)])
        assert refused.exit_code != 0 and "chmod 600" in refused.output and len(served) == 3
