"""Who else hears of a write made through `local-fhir` (its command line or its REST server).

An application that owns a store keeps its own audit log; local_fhir never imports it. The
application registers an observer when `local-fhir` signs in to its store (the `local_fhir.unlock`
entry point), and each committed write is then reported to it: what was done, to which resource
type and id, through which channel, never the resource's content. A library caller that registers
nothing (the app writing back its own letters, which it audits itself) hears nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WriteObserver = Callable[[Path, dict[str, Any]], None]

_observers: list[WriteObserver] = []
channel = "api"  # "cli" or "rest" while `local-fhir` runs; set by its command line


def register(observer: WriteObserver) -> None:
    if observer not in _observers:
        _observers.append(observer)


def unregister(observer: WriteObserver) -> None:
    if observer in _observers:
        _observers.remove(observer)


def notify(db_path: Path, **what: Any) -> None:
    """After a commit: tell every observer. An observer's failure is logged, never raised, as the
    write has already been made and the caller must learn of it (its answer is the record of it)."""
    for observer in list(_observers):
        try:
            observer(db_path, {"channel": channel, **what})
        except Exception:
            log.exception("a write to %s could not be reported to %r", db_path, observer)


def reset() -> None:
    """Forget every observer (the end of a `local-fhir` command)."""
    global channel
    _observers.clear()
    channel = "api"
