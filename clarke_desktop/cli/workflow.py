"""Workflow commands: run a whole consultation headless, recover interrupted work, verify the audit log.

Thin: each command opens the store, calls the library (`clarke_desktop.pipeline`,
`clarke_desktop.store`) and maps errors to a message and an exit code.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from clarke_desktop.schemas import DOCUMENT_TYPES, Transcript

EXIT_PIPELINE = 1
EXIT_TRANSCRIPT_REQUIRED = 2
EXIT_UNRESOLVED = 3


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def read_transcript_file(path: Path) -> Transcript:
    """A typed or exported transcript: UTF-8 text (or a Transcript JSON file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read transcript file {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"transcript file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and retry"
        ) from exc
    if path.suffix.lower() == ".json":
        try:
            return Transcript.model_validate_json(text).model_copy(update={"origin": "imported_text"})
        except ValueError as exc:
            raise click.ClickException(f"transcript file {path} is not a Transcript JSON: {exc}") from exc
    if not text.strip():
        raise click.ClickException(f"transcript file {path} is empty")
    return Transcript(text=text.strip(), origin="imported_text")


@click.command("run-consultation")
@click.option("--patient", "patient_id", required=True, help="FHIR Patient id, e.g. pt-001.")
@click.option(
    "--audio", "audio_path", type=click.Path(path_type=Path, dir_okay=False), help="Consultation audio file."
)
@click.option(
    "--transcript",
    "transcript_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Typed transcript (.txt or Transcript .json).",
)
@click.option(
    "--type",
    "doc_type",
    type=click.Choice(DOCUMENT_TYPES),
    default="clinic",
    show_default=True,
)
@click.option("--sign-off", "signed_by", required=True, help="Name of the clinician signing the letter.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the signed PDF.",
)
@click.option("--aside", default="", help="A note to the letter writer (e.g. 'copy to diabetes nurse').")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to sign (exit 3) while discrepancies are open, instead of recording them as "
    "'keep both' with reason 'headless run: reviewed in output'.",
)
@click.option(
    "--max-section-tokens",
    type=click.IntRange(16, 4096),
    help="Cap the tokens the letter model may write per section (quick runs on the demo model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def run_consultation(
    patient_id: str,
    audio_path: Path | None,
    transcript_path: Path | None,
    doc_type: str,
    signed_by: str,
    out_dir: Path,
    aside: str,
    strict: bool,
    max_section_tokens: int | None,
    as_json: bool,
) -> None:
    """Run a whole consultation headless: transcribe, read the record, draft, sign, export, write back.

    Open discrepancies cannot be reviewed headless: by default each is resolved as "keep both"
    with the reason "headless run: reviewed in output" (audited, and listed in the output);
    --strict refuses to sign instead.

    Example:

        clarke-desktop run-consultation --patient pt-001 --transcript visit.txt --sign-off "Dr S. Chen" --out letters --json
    """
    from clarke_desktop.config import SettingsError, load_settings
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.pipeline import (
        ConsultationPipeline,
        ConsultationRequest,
        PipelineError,
        TranscriptRequired,
        apply_retention,
        sign_off_and_export,
    )
    from clarke_desktop.pipeline.components import default_components, open_fhir
    from clarke_desktop.store import AppStore, StoreError

    if (audio_path is None) == (transcript_path is None):
        raise click.UsageError("give exactly one of --audio FILE or --transcript FILE")
    if audio_path is not None and not audio_path.exists():
        raise click.ClickException(f"audio file {audio_path} does not exist")
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    transcript = read_transcript_file(transcript_path) if transcript_path else None

    def progress(event: Any) -> None:
        if not as_json:
            _echo_err(f"[{event.stage.value:>20}] {event.progress_pct:3d}%  {event.message}")

    try:
        store = AppStore()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    pipeline = ConsultationPipeline(
        default_components(settings), settings=settings, store=store, actor=signed_by
    )
    try:
        apply_retention(store, settings)
        record = store.create_consultation(patient_id, clinician=signed_by, doc_type=doc_type)  # type: ignore[arg-type]
        if audio_path is not None:
            store.import_audio(record.id, audio_path, actor=signed_by)
        request = ConsultationRequest(
            consultation_id=record.id,
            patient_id=patient_id,
            doc_type=doc_type,  # type: ignore[arg-type]
            audio_path=audio_path,
            transcript=transcript,
            aside=aside,
            max_section_tokens=max_section_tokens,
        )
        started = time.perf_counter()
        try:
            result = pipeline.run(request, on_progress=progress)
        except TranscriptRequired as exc:
            _echo_err(f"Error: {exc}")
            _echo_err("Re-run with --transcript FILE.")
            sys.exit(EXIT_TRANSCRIPT_REQUIRED)
        except PipelineError as exc:
            raise click.ClickException(f"{exc.message} (consultation {record.id})") from exc
        pipeline_s = time.perf_counter() - started

        open_ids = [d.id for d in result.document.discrepancies if d.resolution is None]
        if strict and open_ids:
            _echo_err(
                f"Not signed: {len(open_ids)} discrepancies need review ({', '.join(open_ids)}); "
                f"the draft is saved as consultation {record.id}."
            )
            sys.exit(EXIT_UNRESOLVED)

        started = time.perf_counter()
        try:
            fhir = open_fhir(settings)
        except FhirError as exc:
            _echo_err(f"Warning: the FHIR store is unavailable ({exc}); the letter will not be written back.")
            fhir = None
        try:
            final = sign_off_and_export(
                store, record.id, signed_by, out_dir, settings=settings, fhir=fhir, headless=not strict
            )
        finally:
            if fhir is not None:
                fhir.close()
        finalise_s = time.perf_counter() - started
        head_seq, head_hash = store.audit_head()
        latest = store.letter_version(record.id, final.version).document
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        pipeline.close()
        store.close()

    summary = {
        "consultation_id": record.id,
        "patient_id": patient_id,
        "doc_type": doc_type,
        "timings_s": {
            **result.timings,
            "sign_off_export_writeback": round(finalise_s, 4),
            "total": round(pipeline_s + finalise_s, 4),
        },
        "inference_s": result.inference_s,
        "model_load_s": result.load_s,
        "attempts": result.attempts,
        "warnings": [*result.warnings, *final.warnings],
        "degraded": result.degraded,
        "model": result.document.model.model_dump() if result.document.model else None,
        "transcript": {"origin": result.transcript.origin, "words": result.transcript.word_count},
        "discrepancies": [
            {
                "id": d.id,
                "kind": d.kind,
                "severity": d.severity,
                "description": d.description,
                "resolution": d.resolution.model_dump() if d.resolution else None,
            }
            for d in latest.discrepancies
        ],
        "auto_resolved": final.auto_resolved,
        "letter_version": final.version,
        "signed_by": final.signed_by,
        "signed_at": final.signed_at,
        "pdf": str(final.pdf_path),
        "pdf_sha256": final.pdf_sha256,
        "encounter": final.encounter,
        "document_reference": final.document_reference,
        "composition": final.composition,
        "audit_head": {"seq": head_seq, "hash": head_hash},
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"Consultation {record.id}: signed by {final.signed_by} (version {final.version})")
    click.echo(f"PDF: {final.pdf_path}")
    click.echo(f"Written back: {final.document_reference or 'no'}")
    for stage, seconds in summary["timings_s"].items():
        click.echo(f"  {stage:<28} {seconds:8.2f} s")
    for warning in summary["warnings"]:
        click.echo(f"Warning: {warning}")
    for d in summary["discrepancies"]:
        click.echo(
            f"Discrepancy {d['id']} ({d['kind']}): {d['description']} -> {d['resolution']['action'] if d['resolution'] else 'open'}"
        )
    click.echo(f"Audit head: {head_seq} {head_hash}")


@click.command("recover")
@click.option("--apply", "apply_", is_flag=True, help="Recover everything listed (otherwise only list).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def recover(apply_: bool, as_json: bool) -> None:
    """List (and with --apply, recover) interrupted recordings and letter drafts.

    A draft's every autosaved edit is already in the database; recovering it settles the
    consultation back to review (or to waiting when no letter was drafted yet). An interrupted
    recording is converted from its crash-safe raw file to a WAV and attached to its consultation.

    Example:

        clarke-desktop recover --apply
    """
    from clarke_desktop import paths
    from clarke_desktop.store import AppStore, NotFound, StoreError

    try:
        store = AppStore()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    drafts: list[dict[str, Any]] = []
    recordings: list[dict[str, Any]] = []
    writebacks: list[dict[str, Any]] = []
    try:
        writebacks = _pending_writebacks(store, apply_)
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
            if apply_:
                entry["recovered_status"] = store.mark_recovered(record.id, actor="recovery").value
            drafts.append(entry)
        from clarke_desktop.audio import recovery as audio_recovery

        for orphan in audio_recovery.find_orphans(paths.recordings_dir()):
            item: dict[str, Any] = {
                "recording_id": orphan.recording_id,
                "consultation_id": orphan.consultation_id,
                "started_at": orphan.started_at,
                "duration_s": round(orphan.duration_s, 2),
                "raw_file": str(orphan.raw_path),
            }
            if apply_:
                try:
                    wav = audio_recovery.recover(orphan)
                    item["wav"] = str(wav)
                    if orphan.consultation_id:
                        try:
                            store.import_audio(orphan.consultation_id, wav, actor="recovery")
                        except NotFound:
                            item["note"] = "consultation not in this database"
                except (OSError, ValueError) as exc:
                    item["error"] = str(exc)
            recordings.append(item)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps({"drafts": drafts, "recordings": recordings, "writebacks": writebacks}, indent=2)
        )
        return
    for w in writebacks:
        outcome = w.get("document_reference") or w.get("error") or "pending"
        click.echo(f"Signed letter {w['consultation_id']} v{w['version']} not in the record: {outcome}")
    if not drafts and not recordings and not writebacks:
        click.echo("Nothing to recover.")
        return
    for d in drafts:
        state = f" -> {d['recovered_status']}" if "recovered_status" in d else ""
        version = (
            f"letter v{d['letter_version']} autosaved {d['autosaved_at']}"
            if d["letter_version"]
            else "no letter yet"
        )
        click.echo(f"Draft {d['consultation_id']} ({d['patient_id']}, {d['status']}{state}): {version}")
    for r in recordings:
        outcome = f" -> {r['wav']}" if "wav" in r else (f" failed: {r['error']}" if "error" in r else "")
        click.echo(
            f"Recording {r['recording_id']} ({r['duration_s']} s, consultation {r['consultation_id']}){outcome}"
        )
    if not apply_:
        click.echo("Run with --apply to recover these.")


def _pending_writebacks(store: Any, apply_: bool) -> list[dict[str, Any]]:
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
    if not apply_ or not pending:
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


@click.group("audit")
def audit() -> None:
    """The hash-chained audit log: verify it, or list its entries.

    \b
    Example:
      clarke-desktop audit verify
      clarke-desktop audit show --consultation CONSULTATION_ID
    """


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def audit_verify(as_json: bool) -> None:
    """Check every entry's hash and link; name any entry altered or removed (exit 1).

    Example:

        clarke-desktop audit verify
    """
    from clarke_desktop.store import AppStore, StoreError

    try:
        with AppStore() as store:
            report = store.verify_audit()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "head": {"seq": report.head_seq, "hash": report.head_hash},
                    "problems": [
                        {"seq": p.seq, "kind": p.kind, "message": p.message} for p in report.problems
                    ],
                    "notes": report.notes,
                },
                indent=2,
            )
        )
    else:
        for note in report.notes:
            click.echo(f"Note: {note}")
        if report.ok:
            click.echo(
                f"Audit log intact: {report.entries} entries, head {report.head_seq} {report.head_hash}"
            )
        for problem in report.problems:
            click.echo(f"TAMPERED: {problem.message}")
    if not report.ok:
        sys.exit(1)


@audit.command("show")
@click.option("--consultation", "consultation_id", help="Only this consultation's entries.")
def audit_show(consultation_id: str | None) -> None:
    """List audit entries (ids, versions and hashes; never patient content).

    Example:

        clarke-desktop audit show --consultation cons-...
    """
    from clarke_desktop.store import AppStore

    with AppStore() as store:
        for entry in store.audit_entries(consultation_id):
            data = json.dumps(entry.data, sort_keys=True)
            click.echo(
                f"{entry.seq:>6} {entry.at} {entry.event:<22} {entry.consultation_id or '-'} {entry.actor or '-'} {data}"
            )


COMMANDS = [run_consultation, recover, audit]
