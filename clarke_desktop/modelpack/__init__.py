"""Installed model packs: where each role's files live and whether they verify.

Layout of an installed pack (per machine or per user, see `paths.model_dirs()`):
    <models dir>/<role>/...        role in ROLES; files listed in <models dir>/<role>/manifest.json

`locate(role)` only returns a directory whose files pass the quick check (size + cached or
install-time hash evidence); anything else is logged with the reason and skipped, so the app never
loads a truncated or tampered model. `verify_role(role, full=True)` re-hashes every file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clarke_desktop.modelpack.catalogue import CatalogueEntry, catalogue_entry, load_catalogue
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.install import install_pack
from clarke_desktop.modelpack.pack import build_pack
from clarke_desktop.modelpack.record import record_installed
from clarke_desktop.modelpack.verify import (
    FileCheck,
    VerificationResult,
    candidate_dirs,
    verify_directory,
    verify_role,
)

ROLES = ("asr", "ehr_agent", "letter_writer")
EMBEDDED_ROLE = "embedded"  # bundled Gemma 3 270M demo default: not installed from packs

__all__ = [
    "EMBEDDED_ROLE",
    "ROLES",
    "CatalogueEntry",
    "FileCheck",
    "ModelPackError",
    "VerificationResult",
    "build_pack",
    "catalogue_entry",
    "install_pack",
    "load_catalogue",
    "locate",
    "record_installed",
    "verify_role",
]

log = logging.getLogger(__name__)


def locate(role: str) -> Path | None:
    """The directory holding `role`'s installed, verified files, or None when no pack provides it."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; expected one of {ROLES}")
    for role_dir in candidate_dirs(role):
        result = verify_directory(role, role_dir, full=False)
        if result.ok:
            return role_dir
        log.warning("model role %s at %s is not used: %s", role, role_dir, result.reason)
    return None
