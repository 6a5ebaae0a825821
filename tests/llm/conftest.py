"""Real llama.cpp on the embedded Gemma 3 270M GGUF, loaded once per test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clarke_desktop.llm.llama_engine import LlamaCppEngine
from clarke_desktop.llm.registry import embedded_model_path


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return embedded_model_path()


@pytest.fixture(scope="session")
def engine(gguf_path: Path) -> Iterator[LlamaCppEngine]:
    # One thread: this CI machine is shared, and llama.cpp's spinning worker threads degrade badly
    # when cores are oversubscribed (the product default uses the workstation's cores).
    with LlamaCppEngine(gguf_path, role="ehr_agent", n_threads=1, n_threads_batch=1) as loaded:
        yield loaded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on loopback, serving the embedded GGUF."""
    pytest.importorskip("fastapi", reason="the dev extra (llama-cpp-python server deps) is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path),
        "--model_alias",
        "gemma-embedded",
        "--n_ctx",
        "2048",
        "--chat_format",
        "gemma",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--verbose",
        "False",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early:\n{log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 90 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
