"""Settings refuse a model server they cannot use: no address, plain http over the network, or no
answer; a working OpenAI-compatible server (here a real one on the loopback) is accepted."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clarke_desktop.session.errors import SessionError
from clarke_desktop.session.server_check import check_server_url


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        ok = self.path == "/v1/models"
        body = json.dumps({"data": [{"id": "medgemma-27b"}]} if ok else {"error": "no"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_answers_on_this_computer_is_accepted(server: str) -> None:
    assert check_server_url(f"  {server}/ ") == server


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "needs its address"),
        ("llm.hospital.nhs.uk", "not a web address"),
        ("ftp://llm.hospital.nhs.uk", "not a web address"),
        ("http://10.20.30.40:8080", "unencrypted over the network"),
        ("http://llm.hospital.nhs.uk", "unencrypted over the network"),
    ],
)
def test_an_unusable_address_is_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(SessionError, match=says):
        check_server_url(url)


def test_a_server_that_does_not_answer_is_refused() -> None:
    with pytest.raises(SessionError, match="did not answer"):
        check_server_url(f"http://127.0.0.1:{_closed_port()}", timeout_s=2.0)


def test_a_server_without_the_models_list_is_refused(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Models, "do_GET", lambda self: (self.send_response(404), self.end_headers()))
    with pytest.raises(SessionError, match="answered 404"):
        check_server_url(server)


def test_settings_are_not_saved_with_an_unusable_server(
    tmp_path, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    from clarke_desktop.config import load_settings
    from clarke_desktop.session.service import ConsultationService

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    service = ConsultationService()
    try:
        wanted = service.settings()
        wanted.llm_backend, wanted.server_url = "server", ""
        with pytest.raises(SessionError, match="needs its address"):
            service.save_settings(wanted)
        assert load_settings().llm.backend != "server" and service.settings().llm_backend != "server"
        wanted.server_url = server + "/"
        service.save_settings(wanted)
        assert (load_settings().llm.backend, load_settings().llm.server_url) == ("server", server)
    finally:
        service.close()
