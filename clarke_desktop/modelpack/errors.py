"""Errors raised by model-pack operations. Messages name the file and say what to do."""

from __future__ import annotations


class ModelPackError(Exception):
    """A pack or installed model is missing, malformed, truncated or tampered with."""
