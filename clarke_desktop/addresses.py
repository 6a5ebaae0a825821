"""Addresses Clarke sends patient data to (a shared model server, a hospital FHIR server):
https:// anywhere, plain http:// only to a server on this computer. One rule for both, so a
consultation never crosses a network in the clear whichever setting carries it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def plain_http_allowed(host: str) -> bool:
    """Only a server on this computer may be reached without TLS."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_reason(url: str) -> str | None:
    """Why `url` may not carry patient data (in words for the user), or None when it may."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{url} is not a web address: it should start with https://."
    if parts.scheme == "http" and not plain_http_allowed(parts.hostname):
        return (
            f"{url} would send patient data unencrypted over the network: use https:// "
            "(plain http is accepted only for a server on this computer, such as http://127.0.0.1:8080)."
        )
    return None
