"""A sign-off is committed only once its PDF exists: a full disk while printing leaves the letter
unsigned (nothing audited as signed, no half-written PDF), and signing again then works."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import workflow_samples as samples

import clarke_desktop.pipeline.finalise as finalise
from clarke_desktop.config import Settings
from clarke_desktop.pipeline import sign_off_and_export
from clarke_desktop.store import AppStore


def test_a_failed_pdf_leaves_the_letter_unsigned_and_signing_again_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    real = finalise.render_letter_pdf

    def disk_full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_context(cid, samples.context())
        store.save_generated_letter(cid, samples.document(cid, discrepancy=False))
        monkeypatch.setattr(finalise, "render_letter_pdf", disk_full)
        with pytest.raises(OSError, match="No space left"):
            sign_off_and_export(store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=None)
        latest = store.latest_letter(cid)
        assert latest is not None and not latest.signed
        assert "signed_off" not in [e.event for e in store.audit_entries(cid)]
        assert not list((tmp_path / "out").glob("*.pdf")) if (tmp_path / "out").exists() else True

        monkeypatch.setattr(finalise, "render_letter_pdf", real)
        final = sign_off_and_export(store, cid, "Dr S. Chen", tmp_path / "out", settings=Settings(), fhir=None)
        assert store.latest_letter(cid).signed and final.pdf_path.is_file()
        (signed,) = store.signoffs(cid)
        assert signed.signed_at == final.signed_at  # the time printed on the PDF is the time recorded
