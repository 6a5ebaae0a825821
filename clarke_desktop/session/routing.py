"""The administrator's settings: where patient data may go (a shared model server, a hospital
FHIR server) and how soon an unattended window locks. Only as an administrator set them, audited.

`settings.json` sits in the user's own data folder, so anyone with the OS account could edit it:
route every consultation to a server of their choosing, or stop the idle lock. Each change made
through Clarke (an administrator in Settings, or `clarke-desktop settings`) records the digest of
these settings in the keyed audit log; at start the digest of the file's settings must match the
last one recorded. Otherwise the defaults are used (the installed models, the local record, the
5-minute lock) and the refusal is audited, until an administrator sets them again through Clarke.
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
    """The administrator's settings (nothing else): the servers patient data goes to, if any, and
    the idle lock."""
    return {
        "llm_server_url": settings.llm.server_url if settings.llm.backend == "server" else None,
        "fhir_remote_url": settings.fhir.remote_url if settings.fhir.backend == "remote" else None,
        "idle_lock_minutes": float(settings.security.idle_lock_minutes),  # 5 and 5.0 alike
    }


def routes_digest(settings: Settings) -> str:
    return hashlib.sha256(json.dumps(routes(settings), sort_keys=True).encode("utf-8")).hexdigest()


def as_installed(settings: Settings) -> bool:
    """The administrator's settings are all at their defaults (nothing to vouch for)."""
    return routes(settings) == routes(Settings())


def last_recorded_digest(store: AppStore) -> str | None:
    """The routes digest of the last settings change made through Clarke, if any."""
    last = store.audit_entries_of(AuditEvent.SETTINGS_CHANGED, limit=1)
    digest = last[0].data.get("routes_sha256") if last else None
    return str(digest) if digest else None


def trusted(settings: Settings, store: AppStore, *, actor: str | None) -> tuple[Settings, str | None]:
    """`settings` to use, and a notice for the user when the administrator's settings in the file
    were not set through Clarke (then their defaults are used)."""
    if as_installed(settings) or last_recorded_digest(store) == routes_digest(settings):
        return settings, None
    safe = settings.model_copy(deep=True)
    if safe.llm.backend == "server":
        safe.llm.backend = "installed"
    if safe.fhir.backend == "remote":
        safe.fhir.backend = "local"
    safe.security = Settings().security
    store.record_event(
        AuditEvent.SETTINGS_REFUSED,
        actor=actor,
        routes=routes(settings),
        reason="the administrator's settings in settings.json were not set through Clarke",
    )
    notice = (
        "Settings only an administrator may change (the model or FHIR server, the idle lock) were "
        "edited outside Clarke and are not used: the models on this computer, the local record and "
        "the 5-minute lock are used instead. Ask IT to set them again (clarke-desktop settings)."
    )
    log.warning(notice)
    return safe, notice
