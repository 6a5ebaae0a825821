"""Errors raised by model-pack operations. Messages name the file and say what to do."""

from __future__ import annotations

from clarke_desktop.errors import ClarkeError


class ModelPackError(ClarkeError):
    """A pack or installed model is missing, malformed, truncated or tampered with."""
