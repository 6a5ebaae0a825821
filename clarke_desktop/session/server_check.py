"""Checking a model server's address before Settings save it: a letter model that cannot be reached
is found out in Settings, not halfway through a clinic."""

from __future__ import annotations

from clarke_desktop.addresses import insecure_reason
from clarke_desktop.session.errors import SessionError


def check_server_url(url: str, *, timeout_s: float = 5.0) -> str:
    """The address, normalised (no trailing slash), once the server has answered `GET /v1/models`.
    Raises SessionError saying what is wrong: missing, not https on the network, or no answer."""
    import httpx

    url = url.strip().rstrip("/")
    if not url:
        raise SessionError(
            "The model server needs its address, for example https://llm.hospital.nhs.uk:8443."
        )
    refused = insecure_reason(url)
    if refused:
        raise SessionError(refused)
    try:
        answer = httpx.get(f"{url}/v1/models", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise SessionError(f"The model server at {url} did not answer ({type(exc).__name__}). "
                           "Check the address, or ask IT whether the server is running.") from exc  # fmt: skip
    if answer.status_code != 200:
        raise SessionError(
            f"The model server at {url} answered {answer.status_code} to a list of its models; "
            "it is not an OpenAI-compatible server, or it needs a key (ask IT)."
        )
    return url


