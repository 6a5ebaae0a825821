"""Installed model packs: where each role's files live and whether they verify.

Layout of an installed pack (per machine or per user, see `paths.model_dirs()`):
    <models dir>/<role>/...        role in ROLES; files listed in <models dir>/<role>/manifest.json
"""

from __future__ import annotations

from pathlib import Path

from clarke_desktop import paths

ROLES = ("asr", "ehr_agent", "letter_writer")


def locate(role: str) -> Path | None:
    """The directory holding `role`'s installed files, or None when no pack provides it."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; expected one of {ROLES}")
    for base in paths.model_dirs():
        candidate = base / role
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None
