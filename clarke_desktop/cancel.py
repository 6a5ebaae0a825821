"""Cooperative cancellation shared by the pipeline, engines and GUI workers.

A token is cancelled when someone calls `cancel()`, when its parent is cancelled, or when its
deadline passes. Work checks it between steps (an engine each token, the ASR each window), so a
stage's deadline holds in the caller's own thread: no watchdog thread per stage.
"""

from __future__ import annotations

import threading
import time


class Cancelled(Exception):
    """Raised inside a worker when its CancelToken has been cancelled."""


class CancelToken:
    def __init__(self, parent: CancelToken | None = None, deadline: float | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent
        self._deadline = deadline  # time.monotonic() value; None: none

    def child(self, timeout_s: float | None) -> CancelToken:
        """A token cancelled with this one, or on its own after `timeout_s` (None: never)."""
        return CancelToken(self, None if timeout_s is None else time.monotonic() + timeout_s)

    def cancel(self) -> None:
        self._event.set()

    @property
    def expired(self) -> bool:
        """This token's own deadline has passed (a parent's cancellation is not an expiry)."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or self.expired or (self._parent is not None and self._parent.cancelled)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()
