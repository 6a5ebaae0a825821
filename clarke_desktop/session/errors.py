"""Errors of a consultation flow that carry their own user-facing message and exit status."""

from __future__ import annotations

from clarke_desktop.errors import ClarkeError


class SessionError(ClarkeError):
    """`message` is safe to show and says what to do; `exit_code` is what a command exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TranscriptNeeded(SessionError):
    """No speech recognition is installed: the flow needs a typed transcript."""

    exit_code = 2


class NotSigned(SessionError):
    """Discrepancies are open and the flow was told not to resolve them itself. `open` lists them
    (id, kind, severity, description) so a caller can name them on a re-run."""

    exit_code = 3

    def __init__(self, message: str, *, consultation_id: str | None = None,
                 open: list[dict[str, str]] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.consultation_id = consultation_id
        self.open = open or []
