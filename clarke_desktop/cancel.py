"""Cooperative cancellation shared by the pipeline, engines and GUI workers."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside a worker when its CancelToken has been cancelled."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()
