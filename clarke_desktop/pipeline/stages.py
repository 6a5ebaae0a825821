"""Running one stage: its own cancel token with a deadline, and retries with backoff.

The stage runs in the caller's thread (the GUI's task worker or the CLI's main thread). Its token
expires at the deadline; the work checks it cooperatively and stops, and the next attempt starts
only once the previous one has returned, so a model object is never used by two threads at once.
"""

from __future__ import annotations

import functools
import logging
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


@dataclass
class StageOutcome:
    attempts: int = 0
    errors: list[str] = field(default_factory=list)  # exception class names of failed attempts


def run_with_deadline(
    fn: Callable[[CancelToken], T], *, timeout_s: float | None, parent: CancelToken | None, stage: str
) -> T:
    """Run `fn(token)` in this thread with a token that expires after `timeout_s`.

    The work is cooperative (engines check the token each token, the record reader each request),
    so no watchdog thread is needed and a model is never left running in a thread nobody waits for.
    """
    parent = parent or CancelToken()
    token = parent.child(timeout_s)
    try:
        value = fn(token)
    except Cancelled:
        if parent.cancelled or not token.expired:
            raise
        raise StageTimeout(stage, timeout_s or 0.0) from None
    parent.raise_if_cancelled()
    return value


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
                functools.partial(_call_attempt, fn, attempt),
                timeout_s=policy.timeout_s,
                parent=cancel,
                stage=stage,
            )
        except Cancelled:
            raise
        except policy.retry_on as exc:
            outcome.errors.append(type(exc).__name__)
            if attempt >= policy.retries:
                raise
            wait = policy.backoff_s[min(attempt, len(policy.backoff_s) - 1)] if policy.backoff_s else 0.0
            log.warning("stage %s attempt %d failed (%s); retrying", stage, attempt + 1, type(exc).__name__)
            if wait:
                _sleep_unless_cancelled(wait, cancel, sleep)
            attempt += 1


def _call_attempt(fn: Callable[[CancelToken, int], T], attempt: int, token: CancelToken) -> T:
    return fn(token, attempt)


def _sleep_unless_cancelled(
    seconds: float, cancel: CancelToken | None, sleep: Callable[[float], None]
) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cancel is not None:
            cancel.raise_if_cancelled()
        sleep(min(_POLL_S, max(0.0, end - time.monotonic())))
