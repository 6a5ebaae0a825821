"""Work interrupted by a crash or a power cut: letter drafts left mid-flow, recordings left as raw
capture, signed letters the FHIR store never received. Listed, and with `apply` recovered. Used by
`clarke-desktop recover` (and the GUI at start, as it moves over)."""

from __future__ import annotations

from typing import Any

from clarke_desktop.session.errors import SessionError


def recover_interrupted(*, apply: bool) -> dict[str, list[dict[str, Any]]]:
    """{"drafts": [...], "recordings": [...], "writebacks": [...]} as `recover --json` prints them."""
    from clarke_desktop.store import AppStore, StoreError

    try:
        store = AppStore()
    except StoreError as exc:
        raise SessionError(str(exc)) from exc
    try:
        return {
            "drafts": _drafts(store, apply),
            "recordings": _recordings(store, apply),
            "writebacks": _pending_writebacks(store, apply),
        }
    finally:
        store.close()


def _drafts(store: Any, apply: bool) -> list[dict[str, Any]]:
    drafts: list[dict[str, Any]] = []
    for record in store.interrupted():
        latest = store.latest_letter(record.id)
        entry: dict[str, Any] = {
            "consultation_id": record.id,
            "patient_id": record.patient_id,
            "status": record.status.value,
            "updated_at": record.updated_at,
            "letter_version": latest.version if latest else None,
            "autosaved_at": latest.created_at if latest else None,
        }
        if apply:
            entry["recovered_status"] = store.mark_recovered(record.id, actor="recovery").value
        drafts.append(entry)
    return drafts


def _recordings(store: Any, apply: bool) -> list[dict[str, Any]]:
    from clarke_desktop import paths
    from clarke_desktop.audio import recovery as audio_recovery
    from clarke_desktop.errors import ClarkeError
    from clarke_desktop.identity import sealed
    from clarke_desktop.store import NotFound

    recordings: list[dict[str, Any]] = []
    for orphan in audio_recovery.find_orphans(paths.recordings_dir(), files=sealed.FILES):
        item: dict[str, Any] = {
            "recording_id": orphan.recording_id,
            "consultation_id": orphan.consultation_id,
            "started_at": orphan.started_at,
            "duration_s": round(orphan.duration_s, 2),
            "raw_file": str(orphan.raw_path),
            "encrypted": orphan.sealed,
        }
        if apply:
            try:
                wav = audio_recovery.recover(orphan)
                item["wav"] = str(wav)
                if orphan.consultation_id:
                    try:
                        store.import_audio(orphan.consultation_id, wav, actor="recovery")
                    except NotFound:
                        item["note"] = "consultation not in this database"
            except (OSError, ValueError, ClarkeError) as exc:  # a full disk, nothing recorded, damage
                item["error"] = str(exc)
        recordings.append(item)
    return recordings


def _pending_writebacks(store: Any, apply: bool) -> list[dict[str, Any]]:
    """Signed letters the FHIR store never received (it was down at sign-off); retried with --apply."""
    from clarke_desktop.config import SettingsError, load_settings
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.pipeline import retry_writeback
    from clarke_desktop.pipeline.components import open_fhir
    from clarke_desktop.store import StoreError

    pending = store.pending_writebacks()
    items: list[dict[str, Any]] = [
        {"consultation_id": p.consultation_id, "version": p.version, "signed_at": p.signed_at}
        for p in pending
    ]
    if not apply or not pending:
        return items
    try:
        settings = load_settings()
        fhir = open_fhir(settings)
    except (SettingsError, FhirError) as exc:
        for item in items:
            item["error"] = f"FHIR store unavailable: {exc}"
        return items
    try:
        for signoff, item in zip(pending, items, strict=True):
            try:
                result = retry_writeback(store, signoff, settings=settings, fhir=fhir)
            except StoreError as exc:
                item["error"] = str(exc)
                continue
            if result.document_reference:
                item["document_reference"] = result.document_reference
            else:
                item["error"] = "; ".join(result.warnings)
    finally:
        fhir.close()
    return items
