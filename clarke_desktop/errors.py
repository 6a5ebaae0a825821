"""The one base of Clarke's own errors: their text is written for the person using the app.

A front end shows a ClarkeError's `message` (or its text) as it is; any other exception is a
defect and gets a generic sentence, its details only in the log.
"""

from __future__ import annotations


class ClarkeError(Exception):
    """An error with a clinician- or IT-readable message (what went wrong and what to do)."""

    @property
    def user_text(self) -> str:
        message = getattr(self, "message", None)  # some errors keep a fuller sentence apart
        return message.strip() if isinstance(message, str) and message.strip() else str(self).strip()
