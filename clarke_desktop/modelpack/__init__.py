"""Installed model packs: where each role's files live and whether they may be used.

Layout of an installed pack (IT's machine folder, see `paths.model_dirs()`):
    <models dir>/<role>/...        role in ROLES; files listed in <models dir>/<role>/manifest.json,
                                   signed in manifest.sig by a key IT trusts (`signing`)

`locate(role)` is what loaders call. It returns a directory only when its manifest's signature is
from a key IT trusts (or IT's policy allows unsigned packs), the folder holds no file the manifest
does not list, and every file's full sha256 matches, hashed once per process and file state
(`verify.verify_for_use`); anything else is logged with the reason and skipped, so the app never
loads a truncated, tampered, planted or unsigned model. IT's machine folder is searched before the
per-user folder, which is searched only where IT's policy allows per-user packs.
`verify_role(role)` is the quick check for display; `verify_role(role, full=True)` re-hashes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clarke_desktop.modelpack.catalogue import CatalogueEntry, catalogue_entry, load_catalogue
from clarke_desktop.modelpack.errors import ModelPackError
from clarke_desktop.modelpack.install import install_pack
from clarke_desktop.modelpack.pack import build_pack
from clarke_desktop.modelpack.record import record_installed
from clarke_desktop.modelpack.signing import load_policy
from clarke_desktop.modelpack.verify import (
    FileCheck,
    VerificationResult,
    candidate_dirs,
    ignored_dirs,
    verify_directory,
    verify_for_use,
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
    "ignored_dirs",
    "install_pack",
    "load_catalogue",
    "locate",
    "record_installed",
    "verify_directory",
    "verify_for_use",
    "verify_role",
]

log = logging.getLogger(__name__)


def locate(role: str) -> Path | None:
    """The directory holding `role`'s installed files once they are verified for use (signature,
    no unlisted file, every file's sha256), or None when no pack provides it. The first call for a
    role hashes its files in full (about 11-14 s for the 16.5 GB letter writer on a fast SSD; see
    docs/it-guide.md); later calls in the same process only re-stat them."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; expected one of {ROLES}")
    policy = load_policy()
    for role_dir in candidate_dirs(role, policy):
        result = verify_for_use(role, role_dir)
        if result.ok:
            return role_dir
        log.warning("model role %s at %s is not used: %s", role, role_dir, result.reason)
    for ignored in ignored_dirs(role, policy):
        log.warning(
            "model role %s at %s is not used: per-user model packs are not allowed by IT policy (%s)",
            role,
            ignored,
            policy.source,
        )
    return None
