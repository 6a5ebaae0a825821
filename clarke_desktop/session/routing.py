"""Where patient data may go: the settings that send it off this computer (a shared model server,
a hospital FHIR server) are an administrator's, and only as audited.

`settings.json` sits in the user's own data folder, so anyone with the OS account could edit it
and route every consultation to a server of their choosing. Each change made through Clarke (an
administrator in Settings, or `clarke-desktop settings servers`) records the digest of these
settings in the keyed audit log; at start the digest of the file's settings must match the last
one recorded. Otherwise the outside routes are not used (the installed models and the local record
instead), and the refusal is audited, until an administrator sets them again through Clarke.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from clarke_desktop.config import Settings
from clarke_desktop.store import AppStore, AuditEvent

log = logging.getLogger(__name__)


def routes(settings: Settings) -> dict[str, Any]:
    """The settings that decide where patient data goes (nothing else)."""
    server = settings.llm.backend == "server"
    remote = settings.fhir.backend == "remote"
    return {
        "llm_backend": settings.llm.backend,
        "llm_server_url": settings.llm.server_url if server else None,
        "fhir_backend": settings.fhir.backend,
        "fhir_remote_url": settings.fhir.remote_url if remote else None,
    }


def routes_digest(settings: Settings) -> str:
    return hashlib.sha256(json.dumps(routes(settings), sort_keys=True).encode("utf-8")).hexdigest()


def leaves_this_computer(settings: Settings) -> bool:
    return settings.llm.backend == "server" or settings.fhir.backend == "remote"


def last_recorded_digest(store: AppStore) -> str | None:
    """The routes digest of the last settings change made through Clarke, if any."""
    for entry in reversed(store.audit_entries_of(AuditEvent.SETTINGS_CHANGED, limit=1)):
        digest = entry.data.get("routes_sha256")
        return str(digest) if digest else None
    return None


def trusted(settings: Settings, store: AppStore, *, actor: str | None) -> tuple[Settings, str | None]:
    """`settings` to use, and a notice for the user when the outside routes were refused."""
    if not leaves_this_computer(settings) or last_recorded_digest(store) == routes_digest(settings):
        return settings, None
    safe = settings.model_copy(deep=True)
    if safe.llm.backend == "server":
        safe.llm.backend = "installed"
    if safe.fhir.backend == "remote":
        safe.fhir.backend = "local"
    store.record_event(
        AuditEvent.SETTINGS_REFUSED,
        actor=actor,
        routes=routes(settings),
        reason="the servers in settings.json were not set through Clarke by an administrator",
    )
    notice = (
        "The model or FHIR server in the settings file was not set by an administrator through "
        "Clarke, so it is not used: the models on this computer and the local record are used "
        "instead. Ask IT to set the servers again (clarke-desktop settings servers)."
    )
    log.warning(notice)
    return safe, notice
