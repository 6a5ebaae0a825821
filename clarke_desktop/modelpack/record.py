"""Write a manifest for a role directory assembled in place (developer or export output).

IT should use `models pack` + `models install`; this is for a folder produced on this machine,
e.g. by `clarke-desktop models export-medasr --out <models dir>/asr`, which has no pack to verify
against. The files are hashed now and listed in `manifest.json`; with a signing key the manifest is
signed as a pack's would be. Without one the folder is used only where IT's policy allows unsigned
packs.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clarke_desktop.files import atomic_write, file_sha256
from clarke_desktop.modelpack.catalogue import catalogue_entry
from clarke_desktop.modelpack.hashing import HashCache
from clarke_desktop.modelpack.manifest import (
    INSTALL_RECORD,
    RESERVED_NAMES,
    ROLE_MANIFEST,
    ROLE_SIGNATURE,
    FileRecord,
    InstallRecord,
    RoleManifest,
    role_manifest_bytes,
    write_json_atomic,
)
from clarke_desktop.modelpack.signing import sign_manifest


def record_installed(role: str, role_dir: Path, sign_key: Ed25519PrivateKey | None = None) -> RoleManifest:
    """Hash every file under `role_dir` and write `role_dir/manifest.json` (signed with `sign_key`)."""
    role_dir = Path(role_dir)
    entry = catalogue_entry(role)
    cache = HashCache()
    records = []
    mtimes: dict[str, int] = {}
    # Every file, hidden ones too: the app refuses a folder holding a file its manifest does not list.
    for path in sorted(p for p in role_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(role_dir).as_posix()
        if rel.lower() in RESERVED_NAMES:
            continue
        sha = file_sha256(path)
        cache.put(path, sha)
        st = os.stat(path)
        records.append(FileRecord(path=rel, size=st.st_size, sha256=sha))
        mtimes[rel] = st.st_mtime_ns
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest = RoleManifest.for_entry(role, entry, records, packed_at=now)
    data = role_manifest_bytes(manifest)
    atomic_write(role_dir / ROLE_MANIFEST, data, mode=0o644)
    signature = role_dir / ROLE_SIGNATURE
    if sign_key is not None:
        atomic_write(signature, sign_manifest(sign_key, data), mode=0o644)
    else:
        signature.unlink(missing_ok=True)  # a signature of an earlier manifest would not match anyway
    write_json_atomic(role_dir / INSTALL_RECORD, InstallRecord(installed_at=now, mtime_ns=mtimes))
    return manifest.model_copy(update={"installed_at": now})
