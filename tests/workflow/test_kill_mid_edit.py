"""SIGKILL a process in the middle of autosaving edits: every edit it reported saved survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import workflow_samples as samples

from clarke_desktop.store import AppStore

EDITOR = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {samples_dir!r})
    import workflow_samples as samples
    from clarke_desktop.store import AppStore

    store = AppStore({db!r})
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    store.save_generated_letter(cid, samples.document(cid), actor="Dr S. Chen")
    print("cid", cid, flush=True)
    i = 0
    while True:  # an editor autosaving each keystroke burst until it is killed
        version = store.edit_section(cid, "plan", f"autosaved edit {{i}}", actor="Dr S. Chen")
        print("saved", i, version, flush=True)
        i += 1
    """
)


def test_every_autosaved_edit_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "clarke.sqlite3"
    script = EDITOR.format(samples_dir=str(Path(samples.__file__).parent), db=str(db))
    env = {**os.environ, "CLARKE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    cid = proc.stdout.readline().split()[1]
    saved: list[tuple[int, int]] = []
    for line in proc.stdout:
        _, i, version = line.split()
        saved.append((int(i), int(version)))
        if len(saved) >= 40:
            break
    proc.send_signal(signal.SIGKILL)  # mid-write of the next edit, most likely
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with AppStore(db) as store:
        versions = {v.version: v for v in store.letter_versions(cid)}
        for i, version in saved:
            assert versions[version].document.sections[2].content == f"autosaved edit {i}"
        assert max(versions) >= saved[-1][1]
        report = store.verify_audit()
        assert report.ok, report.problems  # a kill between commit and anchor write is only a note
        edits = [e for e in store.audit_entries(cid) if e.event == "letter_edited"]
        assert len(edits) == len(versions) - 1
