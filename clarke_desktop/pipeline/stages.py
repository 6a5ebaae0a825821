"""Running one stage: its own cancel token, a deadline, and retries with backoff.

A stage runs in a worker thread so the deadline holds even while it waits on I/O. On timeout or
when the caller cancels, the stage's token is cancelled (engines check it each token) and the
worker is given a grace period to stop before the next attempt, because a model object must not
be used by two threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.pipeline.errors import StageTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")

_POLL_S = 0.05


@dataclass(frozen=True)
class StagePolicy:
    timeout_s: float | None = None  # None: no deadline
    retries: int = 0  # extra attempts after the first
    backoff_s: tuple[float, ...] = ()  # wait before retry n (last value repeats)
    retry_on: tuple[type[BaseException], ...] = (StageTimeout,)
    stop_grace_s: float = 30.0


@dataclass
class StageOutcome:
    attempts: int = 0
    errors: list[str] = field(default_factory=list)  # exception class names of failed attempts


def run_with_deadline(
    fn: Callable[[CancelToken], T],
    *,
    timeout_s: float | None,
    parent: CancelToken | None,
    stage: str,
    grace_s: float,
) -> T:
    """Run `fn(token)` in a thread; cancel its token on parent cancel or deadline."""
    token = CancelToken()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn(token)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"clarke-stage-{stage}", daemon=True)
    started = time.monotonic()
    worker.start()
    timed_out = False
    stuck = False
    while worker.is_alive():
        worker.join(_POLL_S)
        if parent is not None and parent.cancelled:
            token.cancel()
        elif timeout_s is not None and not timed_out and time.monotonic() - started > timeout_s:
            timed_out = True
            token.cancel()
        if token.cancelled:
            worker.join(grace_s)
            stuck = worker.is_alive()
            if stuck:
                log.error("stage %s did not stop within %.0f s of being cancelled", stage, grace_s)
            break
    if parent is not None and parent.cancelled:
        raise Cancelled()
    if timed_out:
        error = StageTimeout(stage, timeout_s or 0.0)
        error.stuck = stuck  # still running: retrying would share a model between two threads
        raise error
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def run_stage(
    stage: str,
    fn: Callable[[CancelToken, int], T],
    policy: StagePolicy,
    *,
    cancel: CancelToken | None = None,
    outcome: StageOutcome | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn(token, attempt)` until it succeeds or the policy's retries are spent.

    `attempt` (0, 1, ...) lets a stage use smaller settings on a retry."""
    outcome = outcome or StageOutcome()
    attempt = 0
    while True:
        outcome.attempts = attempt + 1
        try:
            return run_with_deadline(
                lambda token, attempt=attempt: fn(token, attempt),
                timeout_s=policy.timeout_s,
                parent=cancel,
                stage=stage,
                grace_s=policy.stop_grace_s,
            )
        except Cancelled:
            raise
        except policy.retry_on as exc:
            outcome.errors.append(type(exc).__name__)
            if attempt >= policy.retries or getattr(exc, "stuck", False):
                raise
            wait = policy.backoff_s[min(attempt, len(policy.backoff_s) - 1)] if policy.backoff_s else 0.0
            log.warning("stage %s attempt %d failed (%s); retrying", stage, attempt + 1, type(exc).__name__)
            if wait:
                _sleep_unless_cancelled(wait, cancel, sleep)
            attempt += 1


def _sleep_unless_cancelled(
    seconds: float, cancel: CancelToken | None, sleep: Callable[[float], None]
) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cancel is not None:
            cancel.raise_if_cancelled()
        sleep(min(_POLL_S, max(0.0, end - time.monotonic())))
