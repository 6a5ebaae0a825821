"""`local-fhir`: inspect and load the FHIR store. JSON on stdout; progress and errors on stderr.

Without --db every command uses the app's own database (the one the GUI and `clarke-desktop` use).
Every command prints JSON on stdout (there is no other output format to choose, so no --json), and
a line per file or entry for people on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from local_fhir.errors import FhirStoreError
from local_fhir.importer import ImportProgress
from local_fhir.store import Store
from local_fhir.verify import verify_file


def _default_db() -> Path:
    from clarke_desktop.paths import fhir_db_path  # the app decides where its database lives

    return fhir_db_path()


def _open(db: Path | None, create: bool = False) -> Store:
    return Store(db or _default_db(), create=create)


def _emit(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _fail(exc: FhirStoreError) -> None:
    click.echo(f"error: {exc}", err=True)
    click.echo(json.dumps(exc.outcome, indent=2, ensure_ascii=False), err=True)
    sys.exit(1)


db_option = click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="SQLite database file (default: the Clarke Desktop app's FHIR database).",
)  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--user", default=None, help="Sign in to open an encrypted store (default: $CLARKE_USER).")
@click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File whose first line is the password (default: $CLARKE_PASSWORD_FILE, else standard input).",
)  # fmt: skip
def main(user: str | None, password_file: Path | None) -> None:
    """local-fhir: an offline FHIR R4 store on SQLite.

    A store encrypted by the application that owns it (Clarke Desktop's own store, once accounts
    are set up) opens after a sign-in: --user NAME --password-file FILE before the command, or
    CLARKE_USER and CLARKE_PASSWORD_FILE. A password is never taken on the command line.

    \b
    Example:
      local-fhir import --db clinic.sqlite3 bundles/
      local-fhir search --db clinic.sqlite3 'Observation?patient=123&category=laboratory&_sort=-date'
      local-fhir --user it.admin --password-file admin.pw stats
    """
    from local_fhir import observers

    observers.channel = "cli"  # `serve` switches it to "rest"
    click.get_current_context().call_on_close(observers.reset)
    if user or os.environ.get("CLARKE_USER"):
        from local_fhir.cipher import unlock_from_command_line

        try:
            unlock_from_command_line(user, password_file)
        except click.ClickException:
            raise


@main.command()
@db_option
def init(db: Path | None) -> None:
    """Create an empty store (or check an existing one). Example: local-fhir init --db fhir.sqlite3"""
    try:
        with _open(db, create=True) as store:
            _emit(store.stats())
    except FhirStoreError as exc:
        _fail(exc)


@main.command("import")
@db_option
@click.option(
    "--lenient", is_flag=True,
    help="Store each file's valid resources and quarantine the invalid ones (see `local-fhir quarantine`).",
)  # fmt: skip
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_(db: Path | None, lenient: bool, paths: tuple[Path, ...]) -> None:
    """Import Bundles (.json) and NDJSON (.ndjson, .ndjson.gz) files or folders.

    By default each file is imported entirely or not at all: one invalid resource refuses its file,
    every problem listed, and the other files carry on. With --lenient a file's valid resources are
    stored and each invalid one is put in the quarantine with its problems; the report lists each
    quarantined resource and the stored resources that point at one (review them with
    `local-fhir quarantine list`). Exits non-zero if any file failed.

    \b
    Example:
      local-fhir import --db fhir.sqlite3 data/*.json
      local-fhir import --lenient --db fhir.sqlite3 hospital-export/
    """
    import tqdm as tqdm_module
    from tqdm import tqdm

    tqdm_module.tqdm.monitor_interval = 0  # no monitor thread: import workers can then be forked
    try:
        store = _open(db, create=True)
    except FhirStoreError as exc:
        _fail(exc)
    with store, tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr, desc="import") as bar:

        def on_progress(p: ImportProgress) -> None:
            bar.total = p.bytes_total
            bar.update(p.bytes_done - bar.n)
            bar.set_postfix(resources=p.resources_done, refresh=False)

        report = store.import_paths(paths, on_progress=on_progress, lenient=lenient)
        store.analyze()
    for f in report.files:
        line = f"{'ok' if f.ok else 'FAILED'}  {f.path}  {f.resources} resources"
        if f.quarantined:
            line += f", {len(f.quarantined)} quarantined"
        click.echo(line + (f"  {f.error}" if f.error else ""), err=True)
        for q in f.quarantined:
            click.echo(f"  quarantined {q['qid']}: {q['resourceType']}/{q['id']} ({q['source']}): "
                       f"{q.get('first_problem')}", err=True)  # fmt: skip
        for ref in f.references_to_quarantined:
            click.echo(f"  {ref['from']} points at {ref['to']}, which is quarantined", err=True)
    _emit(report.to_dict())
    if report.quarantined:
        click.echo(f"{report.quarantined} resource(s) quarantined: see `local-fhir quarantine list`", err=True)
    if not report.ok:
        click.echo(f"error: {len(report.failed)} of {len(report.files)} file(s) failed", err=True)
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check files against R4 without storing anything: a resource or Bundle (.json), or NDJSON
    (.ndjson, .ndjson.gz) with one resource a line. The checks are the ones every write makes.

    Prints {"ok", "files": [{path, ok, resources, outcome}]} (an OperationOutcome per file) on
    stdout and a line per file on stderr. Exit status: 0 when every file is valid, 1 when any is
    not (or cannot be read). No database is needed.

    \b
    Example:
      local-fhir validate patient.json export/*.ndjson
    """
    results = [verify_file(path) for path in paths]
    for result in results:
        problems = [i for i in result["outcome"]["issue"] if i["severity"] in ("error", "fatal")]
        click.echo(f"{'ok' if result['ok'] else 'INVALID'}  {result['path']}  {result['resources']} resource(s)"
                   + (f", {len(problems)} problem(s)" if problems else ""), err=True)  # fmt: skip
        for item in problems[:20]:
            click.echo(f"  {(item.get('expression') or ['?'])[0]}: {item['diagnostics']}", err=True)
        if len(problems) > 20:
            click.echo(f"  ... and {len(problems) - 20} more (all of them on stdout)", err=True)
    ok = all(r["ok"] for r in results)
    _emit({"ok": ok, "files": results})
    if not ok:
        sys.exit(1)


@main.command()
@db_option
@click.argument("query")
def search(db: Path | None, query: str) -> None:
    """Search and print a searchset Bundle. Example: local-fhir search 'Patient?name=thompson'"""
    rtype, _, params = query.partition("?")
    try:
        with _open(db) as store:
            _emit(store.search(rtype.strip("/"), params))
    except FhirStoreError as exc:
        _fail(exc)


@main.command()
@db_option
@click.argument("reference")
def read(db: Path | None, reference: str) -> None:
    """Print one resource: Type/id, or Type/id/_history/version. Example: local-fhir read Patient/123"""
    parts = reference.strip("/").split("/")
    try:
        with _open(db) as store:
            if len(parts) == 2:
                _emit(store.read(parts[0], parts[1]))
            elif len(parts) == 4 and parts[2] == "_history":
                _emit(store.vread(parts[0], parts[1], parts[3]))
            elif len(parts) == 3 and parts[2] == "_history":
                _emit(store.history(parts[0], parts[1]))
            else:
                raise click.UsageError(f"expected Type/id or Type/id/_history/version, not {reference!r}")
    except FhirStoreError as exc:
        _fail(exc)


@main.command()
@db_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
def export(db: Path | None, out: Path) -> None:
    """Write the current resources as NDJSON, one file per type. Example: local-fhir export --out dump/"""
    try:
        with _open(db) as store:
            counts = store.export_ndjson(out)
    except FhirStoreError as exc:
        _fail(exc)
    _emit(
        {
            "out": str(out),
            "files": {f"{t}.ndjson": n for t, n in counts.items()},
            "resources": sum(counts.values()),
        }
    )


@main.command()
@db_option
def stats(db: Path | None) -> None:
    """Counts per resource type, versions and database size. Example: local-fhir stats"""
    try:
        with _open(db) as store:
            _emit(store.stats())
    except FhirStoreError as exc:
        _fail(exc)


@main.group()
def quarantine() -> None:
    """What `import --lenient` could not store: list, show, retry or drop quarantined resources.

    \b
    Example:
      local-fhir quarantine list --patient 123
      local-fhir quarantine show 4
      local-fhir quarantine retry 4 --file fixed-encounter.json
      local-fhir quarantine drop 4
    """


@quarantine.command("list")
@db_option
@click.option("--type", "rtype", default=None, help="Only this resource type.")
@click.option("--patient", default=None, help="Only the resources of this Patient id.")
def quarantine_list(db: Path | None, rtype: str | None, patient: str | None) -> None:
    """A summary of each quarantined resource (JSON list); a line each on stderr.
    Example: local-fhir quarantine list --type Encounter"""
    try:
        with _open(db) as store:
            entries = store.quarantine_list(rtype, patient)
    except FhirStoreError as exc:
        _fail(exc)
    for e in entries:
        click.echo(f"{e['qid']}  {e['resourceType']}/{e['id']}  {e['source']}  {e['first_problem']}", err=True)
    click.echo(f"{len(entries)} quarantined resource(s)", err=True)
    _emit(entries)


@quarantine.command("show")
@db_option
@click.argument("qid", type=int)
def quarantine_show(db: Path | None, qid: int) -> None:
    """One entry in full: the resource as received, its problems (an OperationOutcome) and what
    points at it. Example: local-fhir quarantine show 4"""
    try:
        with _open(db) as store:
            _emit(store.quarantine_get(qid))
    except FhirStoreError as exc:
        _fail(exc)


@quarantine.command("retry")
@db_option
@click.argument("qids", type=int, nargs=-1)
@click.option("--all", "every", is_flag=True, help="Retry every entry.")
@click.option(
    "--file", "fixed", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
    help="A corrected version of the resource (one QID only).",
)  # fmt: skip
def quarantine_retry(db: Path | None, qids: tuple[int, ...], every: bool, fixed: Path | None) -> None:
    """Validate entries again (as they are, or a corrected version from --file) and store the
    valid ones, which leave the quarantine. Exits non-zero if any is still invalid.
    Example: local-fhir quarantine retry 4 --file fixed.json"""
    from local_fhir.jsontext import loads_exact

    if not qids and not every:
        raise click.UsageError("give one or more QIDs, or --all")
    if fixed is not None and (every or len(qids) != 1):
        raise click.UsageError("--file corrects one entry: give exactly one QID")
    try:
        with _open(db) as store:
            targets = [e["qid"] for e in store.quarantine_list()] if every else list(qids)
            replacement = loads_exact(fixed.read_bytes()) if fixed is not None else None
            results = [store.quarantine_retry(qid, replacement) for qid in targets]
    except FhirStoreError as exc:
        _fail(exc)
    except ValueError as exc:
        raise click.UsageError(f"{fixed} is not JSON: {exc}") from None
    for r in results:
        click.echo(f"{r['qid']}  " + (f"stored as {r['location']}" if r["stored"] else "still invalid"), err=True)
    _emit(results)
    if not all(r["stored"] for r in results):
        sys.exit(1)


@quarantine.command("drop")
@db_option
@click.argument("qids", type=int, nargs=-1)
@click.option("--all", "every", is_flag=True, help="Drop every entry.")
def quarantine_drop(db: Path | None, qids: tuple[int, ...], every: bool) -> None:
    """Forget quarantined entries (their resources stay out of the store).
    Example: local-fhir quarantine drop 4 7"""
    if not qids and not every:
        raise click.UsageError("give one or more QIDs, or --all")
    try:
        with _open(db) as store:
            targets = [e["qid"] for e in store.quarantine_list()] if every else list(qids)
            for qid in targets:
                store.quarantine_drop(qid)
    except FhirStoreError as exc:
        _fail(exc)
    click.echo(f"dropped {len(targets)} quarantine entr{'y' if len(targets) == 1 else 'ies'}", err=True)
    _emit({"dropped": targets})


@main.command()
@db_option
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1."
)
@click.option(
    "--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File holding the bearer token (created 0600 with a fresh token if absent). "
         "Default: $LOCAL_FHIR_TOKEN if set, else DB.token beside the database.",
)  # fmt: skip
@click.option(
    "--max-body", default=10 * 1024 * 1024, show_default=True, type=click.IntRange(1024, None),
    help="Largest request body in bytes; a larger one is refused with 413 before it is read.",
)  # fmt: skip
def serve(db: Path | None, port: int, token_file: Path | None, max_body: int) -> None:
    """Serve the store as a FHIR R4 REST API on 127.0.0.1 only.

    Every request needs the header `Authorization: Bearer TOKEN` (else 401). The token comes from
    --token-file PATH (a fresh random token is written there, readable by you only, if the file
    does not exist), else from the LOCAL_FHIR_TOKEN environment variable, else from the file
    DB.token beside the database (created the same way on the first serve). The server prints
    which file it uses, never the token. A file that other users can read is refused.

    Requests must also name this server in Host (localhost, 127.0.0.1 or [::1] with the port;
    else 421) and carry no foreign Origin (else 403); a body must be application/fhir+json or
    application/json (else 415) and at most --max-body bytes (else 413); JSON nested more than 100
    levels is refused (400). Errors are OperationOutcomes.

    \b
    Example:
      local-fhir serve --db fhir.sqlite3 --port 8080 --token-file ~/.local-fhir-token
      curl -H "Authorization: Bearer $(cat ~/.local-fhir-token)" http://127.0.0.1:8080/metadata

    On Clarke Desktop's own store (signed in with --user) every write over REST is written to
    Clarke's audit log under the signed-in account, channel "rest"; so are the command line's.
    """
    from local_fhir import observers
    from local_fhir.server import TOKEN_ENV, read_or_create_token
    from local_fhir.server import serve as run_server

    observers.channel = "rest"

    try:
        store = _open(db)
    except FhirStoreError as exc:
        _fail(exc)
    with store:
        env_token = os.environ.get(TOKEN_ENV, "").strip()
        if token_file is None and env_token:
            token, where = env_token, f"${TOKEN_ENV}"
        else:
            path = token_file or store.path.with_name(store.path.name + ".token")
            created = not path.exists()
            try:
                token = read_or_create_token(path)
            except (OSError, ValueError) as exc:
                raise click.ClickException(f"cannot use the token file: {exc}") from None
            where = f"{path} ({'created' if created else 'existing'}, owner-only)"
        if len(token) < 16:
            raise click.ClickException(f"the token from {where} is too short (at least 16 characters)")
        click.echo(f"serving {store.path} at http://127.0.0.1:{port}/ (Ctrl+C to stop)", err=True)
        click.echo(f"bearer token: {where}; send Authorization: Bearer <token>", err=True)
        run_server(store, token, port, max_body)


if __name__ == "__main__":
    main()
