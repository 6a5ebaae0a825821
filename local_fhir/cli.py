"""`local-fhir`: inspect and load the FHIR store. JSON on stdout; progress and errors on stderr.

Without --db every command uses the app's own database (the one the GUI and `clarke-desktop` use).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from local_fhir.errors import FhirStoreError
from local_fhir.importer import ImportProgress
from local_fhir.store import Store


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
def main() -> None:
    """local-fhir: an offline FHIR R4 store on SQLite.

    \b
    Example:
      local-fhir import --db clinic.sqlite3 bundles/
      local-fhir search --db clinic.sqlite3 'Observation?patient=123&category=laboratory&_sort=-date'
    """


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
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_(db: Path | None, paths: tuple[Path, ...]) -> None:
    """Import Bundles (.json) and NDJSON (.ndjson, .ndjson.gz) files or folders.

    Each file is imported entirely or not at all; a bad file is reported and the rest carry on.
    Exits non-zero if any file failed. Example: local-fhir import --db fhir.sqlite3 data/*.json
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

        report = store.import_paths(paths, on_progress=on_progress)
        store.analyze()
    for f in report.files:
        line = f"{'ok' if f.ok else 'FAILED'}  {f.path}  {f.resources} resources"
        click.echo(line + (f"  {f.error}" if f.error else ""), err=True)
    _emit(report.to_dict())
    if not report.ok:
        click.echo(f"error: {len(report.failed)} of {len(report.files)} file(s) failed", err=True)
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


@main.command()
@db_option
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1."
)
def serve(db: Path | None, port: int) -> None:
    """Serve the store as a FHIR R4 REST API on 127.0.0.1 only. Example: local-fhir serve --port 8080"""
    from local_fhir.server import serve as run_server

    try:
        store = _open(db)
    except FhirStoreError as exc:
        _fail(exc)
    click.echo(f"serving {store.path} at http://127.0.0.1:{port}/ (Ctrl+C to stop)", err=True)
    with store:
        run_server(store, port)


if __name__ == "__main__":
    main()
