"""Write a manifest for a role directory assembled in place (developer or export output).

IT should use `models pack` + `models install`; this is for a folder produced on this machine,
e.g. by `clarke-desktop models export-medasr --out <models dir>/asr`, which has no pack to verify
against. The files are hashed now and trusted from then on.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from clarke_desktop.files import file_sha256
from clarke_desktop.modelpack.catalogue import catalogue_entry
from clarke_desktop.modelpack.hashing import HashCache
from clarke_desktop.modelpack.manifest import ROLE_MANIFEST, FileRecord, RoleManifest, write_json_atomic


def record_installed(role: str, role_dir: Path) -> RoleManifest:
    """Hash every file under `role_dir` and write `role_dir/manifest.json`."""
    role_dir = Path(role_dir)
    entry = catalogue_entry(role)
    cache = HashCache()
    records = []
    for path in sorted(p for p in role_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(role_dir).as_posix()
        if rel == ROLE_MANIFEST:
            continue
        sha = file_sha256(path)
        cache.put(path, sha)
        st = os.stat(path)
        records.append(FileRecord(path=rel, size=st.st_size, sha256=sha, installed_mtime_ns=st.st_mtime_ns))
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest = RoleManifest.for_entry(role, entry, records, installed_at=now)
    write_json_atomic(role_dir / ROLE_MANIFEST, manifest)
    return manifest
