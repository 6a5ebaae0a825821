"""The one way the GUI runs work off the GUI thread.

`TaskRunner.submit(fn, ...)` runs `fn(state)` in a thread pool; `on_result`, `on_error`,
`on_progress` and `on_done` are always called on the GUI thread, never in the worker.

Why a relay object and an explicit queued connection: a Python callable connected to a signal
emitted in a worker runs *in the worker* (see shared KNOWLEDGE.md). Here the worker only emits a
signal whose receiver is a slot of a QObject living on the GUI thread, connected with
`Qt.QueuedConnection`, so Qt posts the call to the GUI event loop. Workers never touch widgets.

Lanes (as in Picard): "general" (small reads), "llm" (one thread: a llama.cpp context is not
thread-safe), "db" (one thread: serialised SQLite writes), "audio" (one thread: capture/ASR).
New work on a key cancels the previous task for that key and its late results are dropped
(Orange's ConcurrentMixin).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot

from clarke_desktop.cancel import Cancelled, CancelToken

log = logging.getLogger(__name__)

LANES = {"general": 2, "llm": 1, "db": 1, "audio": 1}


class _Relay(QObject):
    """Lives on the GUI thread; runs the callbacks queued for it in small time-boxed batches.

    Workers can report faster than the GUI can draw (a model streams tokens). Posting one Qt
    event per report would starve timers, painting and input, because Qt delivers every posted
    event before those. Instead reports go into a queue and one "drain" is posted; a drain runs
    callbacks for at most DRAIN_BUDGET_S, then yields to the event loop and continues later.
    """

    post = Signal()
    DRAIN_BUDGET_S = 0.012

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self.post.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    def push(self, call: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(call)
            if self._scheduled:
                return
            self._scheduled = True
        self.post.emit()

    @Slot()
    def _drain(self) -> None:
        deadline = time.perf_counter() + self.DRAIN_BUDGET_S
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return
                call = self._queue.popleft()
            try:
                call()
            except Exception:  # a bad callback must not take the event loop down
                log.exception("GUI callback failed")
            if time.perf_counter() > deadline:
                QTimer.singleShot(0, self._drain)  # let input, timers and painting run first
                return


@dataclass
class TaskState:
    """Handed to the worker function: progress reporting and cooperative cancellation."""

    cancel: CancelToken
    _emit_progress: Callable[[Any], None]
    worker_thread: str = ""
    _last_progress: float = field(default=0.0)

    def progress(self, value: Any, *, throttle_s: float = 0.0) -> None:
        """Report progress to the GUI thread; `throttle_s` drops reports that come too fast."""
        now = time.monotonic()
        if throttle_s and now - self._last_progress < throttle_s:
            return
        self._last_progress = now
        self._emit_progress(value)

    @property
    def cancelled(self) -> bool:
        return self.cancel.cancelled

    def raise_if_cancelled(self) -> None:
        self.cancel.raise_if_cancelled()


class TaskHandle:
    """What `submit` returns: cancel it, ask whether it finished."""

    def __init__(self, key: str | None, token: CancelToken) -> None:
        self.key = key
        self.token = token
        self.done = threading.Event()
        self.stale = False  # set when replaced by newer work on the same key

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def finished(self) -> bool:
        return self.done.is_set()


class _Runnable(QRunnable):
    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body
        self.setAutoDelete(True)

    def run(self) -> None:
        self._body()


class TaskRunner:
    """Thread pools per lane plus the main-thread relay. Create once, after the QApplication."""

    def __init__(self) -> None:
        self._relay = _Relay()
        self._pools: dict[str, QThreadPool] = {}
        for lane, threads in LANES.items():
            pool = QThreadPool()
            pool.setMaxThreadCount(threads)
            self._pools[lane] = pool
        self._current: dict[str, TaskHandle] = {}
        self._lock = threading.Lock()
        self._closing = False
        self.gui_thread = threading.get_ident()

    def call_on_gui(self, call: Callable[[], None]) -> None:
        """Post `call` to the GUI thread (safe from any thread)."""
        try:
            self._relay.push(call)
        except RuntimeError:  # the relay is gone: the application is shutting down
            log.debug("dropped a GUI callback after shutdown")

    def submit(
        self,
        fn: Callable[[TaskState], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_done: Callable[[], None] | None = None,
        lane: str = "general",
        key: str | None = None,
        coalesce: Callable[[Any], Hashable] | None = None,
    ) -> TaskHandle:
        """`coalesce(value)` names what a progress report updates: a report not yet shown is
        replaced by a newer one with the same name (streamed text: only the latest matters)."""
        if self._closing:
            raise RuntimeError("TaskRunner is shutting down")
        token = CancelToken()
        handle = TaskHandle(key, token)
        if key is not None:
            with self._lock:
                previous = self._current.get(key)
                if previous is not None and not previous.finished:
                    previous.stale = True
                    previous.cancel()
                self._current[key] = handle

        def deliver(callback: Callable[..., None] | None, *args: Any) -> None:
            if callback is None:
                return

            def on_gui() -> None:
                if handle.stale or self._closing:
                    return  # dropped: newer work replaced it, or the app is closing
                callback(*args)

            self.call_on_gui(on_gui)

        pending: dict[Hashable, list[Any]] = {}
        pending_lock = threading.Lock()

        def emit_progress(value: Any) -> None:
            if coalesce is None or on_progress is None:
                deliver(on_progress, value)
                return
            name = coalesce(value)
            with pending_lock:
                box = pending.get(name)
                if box is not None:
                    box[0] = value  # the queued report will show this newer value
                    return
                box = pending[name] = [value]

            def fire() -> None:
                with pending_lock:
                    pending.pop(name, None)
                    latest = box[0]
                on_progress(latest)

            deliver(fire)

        state = TaskState(cancel=token, _emit_progress=emit_progress)

        def body() -> None:
            state.worker_thread = threading.current_thread().name
            try:
                result = fn(state)
            except Cancelled as exc:
                log.info("task cancelled: %s", getattr(fn, "__name__", fn))
                deliver(on_error, exc)
            except BaseException as exc:  # reported to the GUI, never lost
                log.error("task failed: %s\n%s", getattr(fn, "__name__", fn), traceback.format_exc())
                deliver(on_error, exc)
            else:
                deliver(on_result, result)
            finally:
                handle.done.set()
                deliver(on_done)

        self._pools[lane].start(_Runnable(body))
        return handle

    def wait_lane(self, lane: str, timeout_ms: int = -1) -> bool:
        """Block until a lane's queued work is done (call from a worker, never the GUI thread)."""
        return self._pools[lane].waitForDone(timeout_ms)

    def wait_idle(self, timeout_ms: int = -1) -> bool:
        return all(pool.waitForDone(timeout_ms) for pool in self._pools.values())

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the workers (called when the window closes)."""
        self._closing = True
        with self._lock:
            for handle in self._current.values():
                handle.cancel()
        return self.wait_idle(timeout_ms)
