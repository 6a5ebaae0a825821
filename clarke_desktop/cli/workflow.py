"""Workflow commands: run a whole consultation headless, recover interrupted work, verify the audit log.

Thin: each command opens the store, calls the library (`clarke_desktop.pipeline`,
`clarke_desktop.store`) and maps errors to a message and an exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from clarke_desktop.cli.auth import open_installation, service_for, sign_in, sign_in_options
from clarke_desktop.schemas import DOCUMENT_TYPES, Transcript

EXIT_PIPELINE = 1
EXIT_TRANSCRIPT_REQUIRED = 2
EXIT_UNRESOLVED = 3


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def read_transcript_file(path: Path) -> Transcript:
    """The session's reader, its errors as the command's (exit 1, message on stderr)."""
    from clarke_desktop.session.errors import SessionError
    from clarke_desktop.session.transcripts import read_transcript_file as read

    try:
        return read(path)
    except SessionError as exc:
        raise click.ClickException(exc.message) from exc


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
@click.option(
    "--sign-off",
    "signed_by",
    required=True,
    help="Sign the letter as the signed-in clinician account: give its user name or display name "
    "(the name and registration printed come from the account, never from this text).",
)
@click.option(
    "--resolve",
    "resolve",
    multiple=True,
    metavar="ID=ACTION",
    help="Resolve one discrepancy by id: use_record, use_said, keep_both, or dismiss:REASON. Red items "
    "(allergy and dose conflicts) are never resolved by default: each must be named. Repeatable.",
)
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
    "--allow-empty-sections",
    is_flag=True,
    help="Sign even when a section the letter writer should have written is empty (it refuses, exit 3, "
    "naming the sections, by default); the PDF and the audit entry then say which were not written.",
)
@click.option(
    "--max-section-tokens",
    type=click.IntRange(16, 4096),
    help="Cap the tokens the letter model may write per section (quick runs on the demo model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@sign_in_options
def run_consultation(
    patient_id: str,
    audio_path: Path | None,
    transcript_path: Path | None,
    doc_type: str,
    signed_by: str,
    out_dir: Path,
    aside: str,
    strict: bool,
    allow_empty_sections: bool,
    max_section_tokens: int | None,
    as_json: bool,
    resolve: tuple[str, ...],
    user: str | None,
    password_file: Path | None,
) -> None:
    """Run a whole consultation headless: transcribe, read the record, draft, sign, export, write back.

    Needs a clinician account's sign-in (--user and --password-file, or CLARKE_USER and
    CLARKE_PASSWORD_FILE): without one it exits 1 and writes nothing. --sign-off names that same
    account (its user name or display name) as a deliberate confirmation of who signs.

    Red discrepancies (allergy conflicts and any high-severity one, such as a dose said against the
    record) are never resolved by default: each must be named with --resolve ID=ACTION, or the run
    exits 3 listing their ids (they are the same on a re-run of the same transcript and record).
    Other open discrepancies are resolved as "keep both" with the reason "headless run: reviewed in
    output" (the agreed wording is written into the letter, audited and listed in the output);
    --strict refuses to sign instead. A narrative section left empty is never signed silently: exit
    3 naming the sections, unless --allow-empty-sections.
    Exit status: 0 signed; 1 an error or no sign-in (message on stderr); 2 a transcript is needed;
    3 not signed (red discrepancies, open ones with --strict, or empty sections); the draft is kept.

    Example:

        CLARKE_USER=s.chen CLARKE_PASSWORD_FILE=~/.clarke-pw clarke-desktop run-consultation --patient pt-001 \\
            --transcript visit.txt --sign-off s.chen --resolve dose-57-0=use_record --out letters --json
    """
    from clarke_desktop.session.errors import NotSigned, SessionError
    from clarke_desktop.session.events import SessionEvent, StageProgress
    from clarke_desktop.session.headless import HeadlessRequest, run_headless

    if (audio_path is None) == (transcript_path is None):
        raise click.UsageError("give exactly one of --audio FILE or --transcript FILE")
    if audio_path is not None and not audio_path.exists():
        raise click.ClickException(f"audio file {audio_path} does not exist")
    resolutions = _resolutions(resolve)
    signed_in = sign_in(user, password_file)  # before anything is read or written
    account = signed_in.account
    if signed_by.strip().lower() not in {
        account.name.lower(),
        account.display_name.lower(),
        account.signer.lower(),
    }:
        raise click.ClickException(
            f"--sign-off {signed_by!r} is not the signed-in account ({account.name}, {account.display_name}): "
            "a letter is signed only by the account that signed in."
        )
    request = HeadlessRequest(
        patient_id=patient_id, signed_in=signed_in, out_dir=out_dir, resolutions=resolutions, doc_type=doc_type, audio_path=audio_path,
        transcript=read_transcript_file(transcript_path) if transcript_path else None, aside=aside, strict=strict,
        allow_empty_sections=allow_empty_sections,
        max_section_tokens=max_section_tokens,
    )  # fmt: skip

    def progress(event: SessionEvent) -> None:
        if isinstance(event, StageProgress) and not as_json:
            _echo_err(f"[{event.stage.value:>20}] {event.progress_pct:3d}%  {event.message}")

    try:
        summary = run_headless(request, progress)
    except SessionError as exc:
        _echo_err(f"Error: {exc.message}" if exc.exit_code != EXIT_UNRESOLVED else exc.message)
        if as_json and isinstance(exc, NotSigned):  # the ids to name with --resolve on a re-run
            click.echo(json.dumps({"signed": False, "message": exc.message, "consultation_id": exc.consultation_id,
                                   "unresolved": exc.open}, indent=2))  # fmt: skip
        sys.exit(exc.exit_code)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


ACTIONS = ("use_record", "use_said", "keep_both", "dismiss")


def _resolutions(options: tuple[str, ...]) -> dict[str, tuple[Any, str | None]]:
    """--resolve ID=ACTION[:REASON] options as {id: (action, reason)}."""
    out: dict[str, tuple[Any, str | None]] = {}
    for option in options:
        discrepancy_id, sep, rest = option.partition("=")
        action, _, reason = rest.partition(":")
        if not sep or not discrepancy_id or action not in ACTIONS:
            raise click.UsageError(
                f"--resolve {option!r}: write ID=ACTION with ACTION one of {', '.join(ACTIONS)} (dismiss:REASON)"
            )
        if action == "dismiss" and not reason.strip():
            raise click.UsageError(f"--resolve {option!r}: a dismissal needs its reason, as dismiss:REASON")
        out[discrepancy_id] = (action, reason.strip() or None)
    return out


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo(
        f"Consultation {summary['consultation_id']}: signed by {summary['signed_by']} (version {summary['letter_version']})"
    )
    click.echo(f"PDF: {summary['pdf']}")
    click.echo(f"Written back: {summary['document_reference'] or 'no'}")
    for stage, seconds in summary["timings_s"].items():
        click.echo(f"  {stage:<28} {seconds:8.2f} s")
    for warning in summary["warnings"]:
        click.echo(f"Warning: {warning}")
    for d in summary["discrepancies"]:
        click.echo(
            f"Discrepancy {d['id']} ({d['kind']}): {d['description']} -> {d['resolution']['action'] if d['resolution'] else 'open'}"
        )
    click.echo(f"Audit head: {summary['audit_head']['seq']} {summary['audit_head']['hash']}")


@click.command("record")
@click.option("--patient", "patient_id", required=True, help="FHIR Patient id, e.g. pt-001.")
@click.option(
    "--from-wav", "source", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="An audio file recorded elsewhere (a dictaphone): WAV, FLAC or OGG.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@sign_in_options
def record(
    patient_id: str, source: Path, as_json: bool, user: str | None, password_file: Path | None
) -> None:
    """Store an audio file as the patient's consultation recording, as a microphone recording is.

    The file is converted to 16 kHz mono WAV in the recordings folder (encrypted once the
    installation has accounts), hashed, and audited under the signed-in clinician, who attests
    the patient's consent by storing it. The original file is left where it is. Needs a clinician's
    sign-in (--user and --password-file, or CLARKE_USER and CLARKE_PASSWORD_FILE).

    Example:

        CLARKE_USER=s.chen CLARKE_PASSWORD_FILE=~/.clarke-pw clarke-desktop record --patient pt-001 --from-wav visit.wav
    """
    from clarke_desktop.errors import ClarkeError
    from clarke_desktop.session.identity import require_signer

    signed_in = sign_in(user, password_file)
    try:
        require_signer(signed_in)
    except ClarkeError as exc:
        raise click.ClickException(exc.user_text) from exc
    with service_for(signed_in) as service:
        stored = service.store_recording(patient_id, source)
    if as_json:
        click.echo(json.dumps(stored, indent=2))
    else:
        click.echo(
            f"Stored {stored['duration_s']} s as consultation {stored['consultation_id']}'s recording."
        )


@click.command("export")
@click.option("--letter", "consultation_id", required=True, help="The consultation id of the signed letter.")
@click.option("--version", "version", type=click.IntRange(1, None), default=None,
              help="Which signed version (default: the latest signed).")  # fmt: skip
@click.option(
    "--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Also write a readable copy to this file, outside the data folder (audited).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@sign_in_options
def export(
    consultation_id: str,
    version: int | None,
    out: Path | None,
    as_json: bool,
    user: str | None,
    password_file: Path | None,
) -> None:
    """Re-create the PDF of a signed letter version (lost, damaged, or never finished).

    The letter text, signer, signing time and version are exactly those signed (the stored version
    must still match the sign-off's hash); the letterhead is the current one. The PDF is kept in
    the data folder (encrypted once the installation has accounts) and recorded as that version's
    export, audited under the signed-in account; with --out, a readable copy is also written there.

    \b
    Exit status: 0 written; 1 no such signed version, or the file cannot be written; 2 usage.
    JSON (--json): {"consultation_id", "version", "signed_by", "signed_at", "pdf", "sha256",
    "encrypted", "copy": PATH or null}.

    Example:

        clarke-desktop export --letter cons-... --version 1 --out ~/letter.pdf
    """
    with service_for(open_installation(user, password_file)) as service:
        made = service.recreate_pdf(consultation_id, version)
        copy = service.save_pdf_copy(consultation_id, made.version, out) if out is not None else None
    result = {
        "consultation_id": made.consultation_id,
        "version": made.version,
        "signed_by": made.signed_by,
        "signed_at": made.signed_at,
        "pdf": str(made.pdf_path),
        "sha256": made.pdf_sha256,
        "encrypted": made.pdf_encrypted,
        "copy": str(copy) if copy is not None else None,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"Re-created the PDF of {consultation_id} v{made.version}, signed by {made.signed_by}: {made.pdf_path}")
        if copy is not None:
            click.echo(f"Readable copy: {copy}")


@click.command("recover")
@click.option("--apply", "apply_", is_flag=True, help="Recover everything listed (otherwise only list).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@sign_in_options
def recover(apply_: bool, as_json: bool, user: str | None, password_file: Path | None) -> None:
    """List (and with --apply, recover) interrupted recordings and letter drafts.

    A draft's every autosaved edit is already in the database; recovering it settles the
    consultation back to review (or to waiting when no letter was drafted yet). An interrupted
    recording is converted from its crash-safe raw file to a WAV and attached to its consultation.

    Example:

        clarke-desktop recover --apply
    """
    from clarke_desktop.session.errors import SessionError
    from clarke_desktop.session.recovery import recover_interrupted

    open_installation(user, password_file)
    try:
        found = recover_interrupted(apply=apply_)
    except SessionError as exc:
        raise click.ClickException(exc.message) from exc
    drafts, recordings, writebacks = found["drafts"], found["recordings"], found["writebacks"]
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


@click.group("audit")
def audit() -> None:
    """The keyed, hash-chained audit log: verify it, export a signed checkpoint, list entries.

    With accounts, every entry is an HMAC-SHA256 under a key only a signed-in Clarke holds, so
    the log cannot be rewritten by someone who can only write the database file. A checkpoint,
    kept off this computer, also proves against someone who can sign in that nothing up to it
    was changed or removed since.

    \b
    Example:
      clarke-desktop audit verify
      clarke-desktop audit checkpoint --out /media/usb/clarke-audit-2026-12-07.json
      clarke-desktop audit verify --checkpoint /media/usb/clarke-audit-2026-12-07.json
      clarke-desktop audit show --consultation CONSULTATION_ID
    """


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    help="A checkpoint written earlier by `audit checkpoint`: also prove that no entry up to it "
    "was changed or removed since.",
)
@sign_in_options
def audit_verify(
    as_json: bool, checkpoint_file: Path | None, user: str | None, password_file: Path | None
) -> None:
    """Check every entry's hash and link, the head anchor and, given one, a checkpoint; name any
    entry altered or removed (exit 1).

    \b
    Exit status: 0 intact; 1 tampered (each problem named); 2 usage or unreadable checkpoint.
    JSON (--json): {"ok", "entries", "head": {"seq", "hash"}, "keyed",
    "problems": [{"seq", "kind", "message"}], "notes", and with --checkpoint
    "checkpoint": {"seq", "made_at", "ok"}}. Problem kinds: altered, removed, unanchored,
    unkeyed, unprotected, unverifiable, checkpoint.

    Example:

        clarke-desktop audit verify --checkpoint /media/usb/clarke-audit-2026-12-07.json
    """
    from clarke_desktop.store import AppStore, StoreError

    checkpoint = _read_checkpoint(checkpoint_file) if checkpoint_file else None
    open_installation(user, password_file)
    try:
        with AppStore() as store:
            report = store.verify_audit(checkpoint)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        out: dict[str, object] = {
            "ok": report.ok,
            "entries": report.entries,
            "head": {"seq": report.head_seq, "hash": report.head_hash},
            "keyed": report.keyed,
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in report.problems],
            "notes": report.notes,
        }
        if report.checkpoint is not None:
            out["checkpoint"] = report.checkpoint
        click.echo(json.dumps(out, indent=2))
    else:
        for note in report.notes:
            click.echo(f"Note: {note}")
        if report.ok:
            chain = "keyed HMAC chain" if report.keyed else "plain hash chain (no accounts)"
            click.echo(
                f"Audit log intact: {report.entries} entries, head {report.head_seq} {report.head_hash} ({chain})"
            )
            if report.checkpoint is not None:
                click.echo(
                    f"Matches the checkpoint of {report.checkpoint['made_at']} at entry {report.checkpoint['seq']}."
                )
        for problem in report.problems:
            click.echo(f"TAMPERED: {problem.message}")
    if not report.ok:
        sys.exit(1)


def _read_checkpoint(path: Path) -> dict[str, object]:
    try:
        if path.stat().st_size > 64 * 1024:
            raise ValueError("larger than any checkpoint")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"{path} is not a readable audit checkpoint ({exc})") from exc
    if not isinstance(data, dict):
        raise click.UsageError(f"{path} is not an audit checkpoint (expected a JSON object)")
    return data


@audit.command("checkpoint")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the checkpoint (JSON); keep it off this computer.",
)
@click.option("--json", "as_json", is_flag=True, help="Also print the checkpoint on stdout.")
@sign_in_options
def audit_checkpoint(out: Path, as_json: bool, user: str | None, password_file: Path | None) -> None:
    """Export the log's head signed with this installation's ed25519 key (needs a sign-in).

    The checkpoint holds only the head's entry number, its hash, when it was made, the
    installation's public key and the signature: no patient data. Store it off this computer
    (another server, a printed copy of the hash); `audit verify --checkpoint FILE` later proves
    nothing up to it was changed or removed. The export itself is audited.

    \b
    Exit status: 0 written; 1 the store cannot be opened or the file cannot be written;
    2 usage (no sign-in on an installation with accounts).

    Example:

        clarke-desktop audit checkpoint --out /media/usb/clarke-audit-2026-12-07.json
    """
    from clarke_desktop.files import atomic_write
    from clarke_desktop.store import AppStore, AuditEvent, StoreError

    signed_in = open_installation(user, password_file)
    if signed_in is None:
        raise click.UsageError("audit checkpoints need an installation with accounts and a sign-in")
    try:
        with AppStore() as store:
            made = store.audit_checkpoint()
            text = json.dumps(made, indent=2)
            try:
                atomic_write(out, text + "\n")
            except OSError as exc:
                raise click.ClickException(f"cannot write the checkpoint to {out}: {exc}") from exc
            store.record_event(
                AuditEvent.AUDIT_CHECKPOINT,
                actor=signed_in.account.name,
                seq=made["seq"],
                hash=made["hash"],
                destination=str(out.resolve()),
            )
    except (StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(text)
    else:
        click.echo(f"Checkpoint of entry {made['seq']} written to {out}")
        click.echo(f"Installation key: {made['public_key']}")


@audit.command("show")
@click.option("--consultation", "consultation_id", help="Only this consultation's entries.")
@sign_in_options
def audit_show(consultation_id: str | None, user: str | None, password_file: Path | None) -> None:
    """List audit entries (ids, versions and hashes; never patient content).

    Example:

        clarke-desktop audit show --consultation cons-...
    """
    from clarke_desktop.store import AppStore

    open_installation(user, password_file)
    with AppStore() as store:
        for entry in store.audit_entries(consultation_id):
            data = json.dumps(entry.data, sort_keys=True)
            click.echo(
                f"{entry.seq:>6} {entry.at} {entry.event:<22} {entry.consultation_id or '-'} {entry.actor or '-'} {data}"
            )


COMMANDS = [run_consultation, record, export, recover, audit]
