"""Bulk import of Bundles (.json) and NDJSON (.ndjson, .ndjson.gz) files.

Each file is one SQLite transaction: it is imported entirely or not at all, and a bad file is
reported (with its OperationOutcome) while the others carry on. Bundles keep the ids their resources
carry (a load, not a client POST), with `urn:uuid:` references rewritten to `Type/id`.

`lenient=True` (`local-fhir import --lenient`): a file's valid resources are stored and each
invalid one (or unreadable NDJSON line) goes to the quarantine with its problems (`quarantine.py`);
the report lists each of them and the resources that point at them. A file that cannot be read
as a whole (not JSON, not a Bundle) still fails.

Inputs are read within limits (`inputs.py`): `.gz` expanded as a stream and refused past a ratio
or total size (a decompression bomb), an over-long NDJSON line refused (or quarantined) by number
unread, JSON nested too deeply refused for its file or line (`jsontext.MAX_DEPTH`); a problem in
one file, a RecursionError included, never stops the import of the others.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_fhir import inputs, quarantine
from local_fhir.bundles import apply_transaction
from local_fhir.errors import FhirStoreError, InvalidResource, UnprocessableResource, issue, operation_outcome
from local_fhir.jsontext import TooDeep, loads_exact
from local_fhir.quarantine import Quarantined
from local_fhir.searchparams import registry
from local_fhir.store import Prepared, prepare
from local_fhir.validation import problems_of_many, warm

if TYPE_CHECKING:
    from local_fhir.store import Store

SUFFIXES = (".json", ".ndjson", ".ndjson.gz")
PARALLEL_BYTES = 4_000_000  # below this, starting worker processes costs more than it saves
NDJSON_CHUNK_LINES = 250  # resources per piece of work when an NDJSON file is shared among workers
NDJSON_CHUNK_BYTES = 16 * 1024 * 1024  # ...or fewer, when its lines are big
_UNREADABLE = (OSError, ValueError, UnicodeDecodeError, EOFError, RecursionError)  # a file's own problem
ProgressCallback = Callable[["ImportProgress"], None]


@dataclass
class ImportProgress:
    path: Path
    bytes_done: int
    bytes_total: int
    resources_done: int


@dataclass
class FileResult:
    path: Path
    ok: bool
    resources: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    outcome: dict[str, Any] | None = None
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # lenient: what was left out
    references_to_quarantined: list[dict[str, Any]] = field(default_factory=list)  # {from, to, qid}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "ok": self.ok,
            "resources": self.resources,
            "by_type": self.by_type,
        }
        if self.quarantined:
            out["quarantined"] = self.quarantined
            out["references_to_quarantined"] = self.references_to_quarantined
        if self.error:
            out["error"] = self.error
            out["outcome"] = self.outcome
        return out


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        return sum(f.resources for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def quarantined(self) -> int:
        return sum(len(f.quarantined) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": len(self.files),
            "failed": len(self.failed),
            "resources": self.resources,
            "quarantined": self.quarantined,
            "seconds": round(self.seconds, 3),
            "resources_per_second": round(self.resources / self.seconds, 1) if self.seconds else None,
            "per_file": [f.to_dict() for f in self.files],
        }


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: the given files, and every importable file under the given folders."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)))
        else:
            out.append(path)
    return out


def _as_transaction(doc: dict[str, Any]) -> dict[str, Any]:
    """Any Bundle or single resource as a transaction that keeps the resources' ids."""
    if doc.get("resourceType") == "Bundle" and doc.get("type") in ("transaction", "batch"):
        return doc
    entries = []
    items = doc.get("entry") or [] if doc.get("resourceType") == "Bundle" else [{"resource": doc}]
    for entry in items:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        request = (
            {"method": "PUT", "url": f"{rtype}/{resource['id']}"}
            if resource.get("id")
            else {"method": "POST", "url": f"{rtype}"}
        )
        entries.append(
            {
                **({"fullUrl": entry["fullUrl"]} if entry.get("fullUrl") else {}),
                "resource": resource,
                "request": request,
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _is_ndjson(path: Path) -> bool:
    return path.name.endswith((".ndjson", ".ndjson.gz"))


def _ndjson_lines(path: Path, cap: int) -> Iterator[tuple[int, str | None]]:
    """Non-blank lines as text; None for a line over `cap` bytes (never read whole)."""
    for number, raw in inputs.lines(path, cap):
        if raw is None:
            yield number, None
        elif raw.strip():
            yield number, raw.decode("utf-8")


@dataclass
class FilePrep:
    """A file parsed, validated and turned into rows in a worker; `fallback` means it needs the
    database to resolve (conditional references, ifNoneExist, DELETE/GET entries)."""

    path: Path
    items: list[Prepared] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    outcome: dict[str, Any] | None = None
    fallback: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)  # NDJSON: issues of bad lines so far
    last: bool = True  # the file's last piece (a big NDJSON file comes in several)
    chars: int = 0  # NDJSON: characters of text in this piece (for progress within the file)
    quarantined: list[Quarantined] = field(default_factory=list)  # lenient: invalid resources
    lenient: bool = False


class _NeedsStore(Exception):
    pass


def _resolve_offline(mapping: dict[str, str]) -> Callable[[str, str], str]:
    def resolve(ref: str, where: str) -> str:
        if ref in mapping:
            return mapping[ref]
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            raise InvalidResource(
                f"reference {ref!r} at {where} matches no entry's fullUrl in the bundle",
                operation_outcome([issue(f"unresolved reference {ref!r}", "invalid", where)]),
            )
        if "?" in ref:
            raise _NeedsStore(ref)
        return ref

    return resolve


def _rewrite_in_place(value: Any, resolve: Callable[[str, str], str], where: str) -> None:
    """`rewrite_references` without the copy: a file's freshly parsed document is ours to change."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                value[key] = resolve(item, where)
            elif isinstance(item, dict | list):
                _rewrite_in_place(item, resolve, where)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _rewrite_in_place(item, resolve, where)


def _prepare_bundle(doc: dict[str, Any], prep: FilePrep) -> None:
    bundle = _as_transaction(doc)
    entries = bundle.get("entry") or []
    planned: list[tuple[int, dict[str, Any], str]] = []
    mapping: dict[str, str] = {}
    for i, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(resource, dict) or request.get("ifNoneExist"):
            raise _NeedsStore("entry needs the store")
        method, url = request.get("method"), str(request.get("url", ""))
        rtype = resource.get("resourceType")
        if method == "POST" and url == rtype:
            given = resource.get("id")
            rid = given if isinstance(given, str) else str(uuid.uuid4())
        elif method == "PUT" and url.startswith(f"{rtype}/") and "?" not in url:
            rid = url.split("/", 1)[1]
        else:
            raise _NeedsStore("entry needs the store")
        planned.append((i, resource, rid))
        if entry.get("fullUrl"):
            mapping[entry["fullUrl"]] = f"{rtype}/{rid}"
    resolve = _resolve_offline(mapping)
    problems_found: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for i, resource, rid in planned:
        _rewrite_in_place(resource, resolve, f"Bundle.entry[{i}].resource")
        resource["id"] = rid
    checked = problems_of_many([(resource, f"Bundle.entry[{i}].resource") for i, resource, _ in planned])
    for (i, rewritten, _), found in zip(planned, checked, strict=True):
        if found and prep.lenient:
            prep.quarantined.append(quarantine.make(rewritten, f"{prep.path}: Bundle.entry[{i}]", found))
            continue
        if found:
            problems_found += found
            continue
        prep.items.append(prepare(rewritten, registry()))
        counts[rewritten["resourceType"]] += 1
    if problems_found:
        raise UnprocessableResource(
            f"{len(problems_found)} problem(s), first: {problems_found[0]['diagnostics']} at "
            f"{problems_found[0].get('expression', ['?'])[0]}",
            operation_outcome(problems_found),
        )
    prep.counts = dict(sorted(counts.items()))


def _prepare_ndjson_lines(
    path: Path, lines: list[tuple[int, str | None]], prep: FilePrep, line_cap: int = inputs.MAX_LINE_BYTES
) -> None:
    """Validate and index NDJSON lines into `prep`; each bad line's problems go to `prep.problems`
    (lenient: the line goes to `prep.quarantined` with them). None is a line over `line_cap`."""
    # Each step runs over the whole piece before the next: the validator's and the indexer's code
    # stay in the CPU caches instead of evicting each other at every line (about 7% faster).
    parsed: list[tuple[int, str, Any, dict[str, Any] | None]] = []  # (line, where, resource, issue if not JSON)
    for number, line in lines:
        where = f"{path.name}:{number}"
        if line is None:
            message = inputs.line_too_long(number, line_cap)
            parsed.append((number, where, None, issue(message, "too-costly", where)))
            continue
        try:
            parsed.append((number, where, loads_exact(line), None))
        except ValueError as exc:
            code = "too-costly" if isinstance(exc, TooDeep) else "structure"
            parsed.append((number, where, None, issue(f"line {number}: {exc}", code, where)))
    texts = {n: t for n, t in lines if t is not None} if prep.lenient else {}  # as received
    checked = iter(problems_of_many([(resource, where) for _, where, resource, not_json in parsed if not_json is None]))
    valid = []
    for number, _, resource, not_json in parsed:  # problems listed in line order
        found = [not_json] if not_json is not None else next(checked)
        if found and prep.lenient:
            text = texts.get(number, "").rstrip("\r\n") or None
            prep.quarantined.append(quarantine.make(resource, f"{path}: line {number}", found, text))
        elif found:
            prep.problems.extend(found)
        else:
            valid.append(resource)
    counts: Counter[str] = Counter(prep.counts)
    reg = registry()
    for resource in valid:
        if "id" not in resource:
            resource["id"] = str(uuid.uuid4())
        prep.items.append(prepare(resource, reg))
        counts[resource["resourceType"]] += 1
    prep.counts = dict(sorted(counts.items()))


def _refuse_if_problems(prep: FilePrep) -> None:
    """A file with any bad line is refused whole, every problem listed (nothing of it is written)."""
    if prep.problems:
        first = prep.problems[0]
        prep.error = f"{len(prep.problems)} problem(s), first: {first['diagnostics']}"
        prep.outcome, prep.items = operation_outcome(prep.problems), []


def prepare_file(path: Path, lenient: bool = False) -> FilePrep:
    """Parse, validate and index a whole file without touching the database (runs in workers).
    NDJSON comes in pieces instead (`_units`); here only when it cannot be read."""
    prep = FilePrep(path, lenient=lenient)
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        doc = loads_exact(inputs.read_json_file(path))
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            raise InvalidResource("the file is not a FHIR resource or Bundle (no resourceType)")
        _prepare_bundle(doc, prep)
    except _NeedsStore:
        return FilePrep(path, fallback=True, lenient=lenient)
    except FhirStoreError as exc:
        prep.error, prep.outcome, prep.items = str(exc), exc.outcome, []
    except _UNREADABLE as exc:  # unreadable, not JSON, too big or deep, bad gzip
        prep.error, prep.outcome = _unreadable(path, exc)
        prep.items = []
    return prep


def _unreadable(path: Path, exc: BaseException) -> tuple[str, dict[str, Any]]:
    """A file's error and OperationOutcome for an exception that refuses it whole."""
    if isinstance(exc, RecursionError):  # a last resort: depth is refused when parsing
        exc = TooDeep(f"{path.name}: nested too deeply to process")
    code = "too-costly" if isinstance(exc, inputs.InputTooLarge | TooDeep) else "structure"
    message = f"{type(exc).__name__}: {exc}"
    return message, operation_outcome([issue(message, code, str(path))])


class _Refused(Exception):
    pass


def write_pieces(
    store: Store,
    first: FilePrep,
    more: Iterator[FilePrep],
    piece_written: Callable[[int, int], None] | None = None,
) -> FileResult:
    """Write a prepared file, taking its further pieces from `more` as they come (a big NDJSON
    file is written while the workers still prepare the rest of it). One transaction: a bad line
    anywhere refuses the whole file, every problem listed, and nothing of it stays written.
    `piece_written(resources, chars)` is told the totals so far after each piece but the last."""
    if first.fallback:
        return import_file(store, first.path, first.lenient)
    prep, piece, written, chars = first, first, 0, 0
    held: list[Quarantined] = []
    qids: list[int] = []
    try:
        with store.write_session() as writes:
            while True:
                if piece is not first:
                    _merge(prep, piece)
                if not (prep.error or prep.problems):  # once refused, only the problems matter
                    absent = writes.absent(piece.items)
                    for item in piece.items:
                        writes.put_prepared(item, absent=absent)
                        written += 1
                        if written % 5000 == 0:
                            writes.flush()
                    qids += writes.quarantine(piece.quarantined)
                    held += piece.quarantined
                piece.items, piece.quarantined = [], []
                if piece.last:
                    break
                chars += piece.chars
                if piece_written:
                    piece_written(written, chars)
                piece = next(more)
            _refuse_if_problems(prep)
            if prep.error:
                raise _Refused
            pointing = writes.quarantine_references(qids)
    except _Refused:
        return FileResult(prep.path, False, error=prep.error, outcome=prep.outcome)
    except FhirStoreError as exc:
        while not piece.last:  # leave the rest of this file's pieces out of the next file
            piece = next(more)
        return FileResult(prep.path, False, error=str(exc), outcome=exc.outcome)
    return FileResult(prep.path, True, sum(prep.counts.values()), prep.counts,
                      quarantined=[q.summary(qid) for q, qid in zip(held, qids, strict=True)],
                      references_to_quarantined=pointing)  # fmt: skip


def import_file(store: Store, path: Path, lenient: bool = False) -> FileResult:
    """One file in this process; a Bundle goes through the transaction path resource by resource
    (conditional references and ifNoneExist need the store), NDJSON through the bulk path."""
    if _is_ndjson(path):  # in pieces, as import_paths does: memory stays bounded by a piece
        preps = map(_prepare_unit, _units([path], lenient))
        return write_pieces(store, next(preps), preps)
    counts: Counter[str] = Counter()
    left_out: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] | None = [] if lenient else None
    held: list[Quarantined] = []
    qids: list[int] = []
    pointing: list[dict[str, Any]] = []
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        with store.write_session() as writes:
            doc = loads_exact(inputs.read_json_file(path))
            if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
                raise InvalidResource("the file is not a FHIR resource or Bundle (no resourceType)")
            bundle = _as_transaction(doc)
            response = apply_transaction(writes, bundle, keep_ids=True, quarantine=left_out)
            for entry, result in zip(bundle["entry"], response["entry"], strict=True):
                if "location" in result["response"] and entry["request"]["method"] != "DELETE":
                    counts[entry["resource"]["resourceType"]] += 1
            held = [quarantine.make(resource, f"{path}: Bundle.entry[{i}]", found)
                    for i, resource, found in left_out or []]  # fmt: skip
            qids = writes.quarantine(held)
            pointing = writes.quarantine_references(qids)
    except FhirStoreError as exc:
        return FileResult(path, False, error=str(exc), outcome=exc.outcome)
    except _UNREADABLE as exc:  # unreadable, not JSON, too big or deep, bad gzip
        message, outcome = _unreadable(path, exc)
        return FileResult(path, False, error=message, outcome=outcome)
    return FileResult(path, True, sum(counts.values()), dict(sorted(counts.items())),
                      quarantined=[q.summary(qid) for q, qid in zip(held, qids, strict=True)],
                      references_to_quarantined=pointing)  # fmt: skip


def _fork_is_safe() -> bool:
    # fork is fast, and safe while this process has a single thread (the CLI, a script). A frozen
    # app (PyInstaller) or a threaded one (the GUI) would need spawn, which re-enters the app.
    return sys.platform == "linux" and threading.active_count() == 1 and not getattr(sys, "frozen", False)


_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Z][A-Za-z]{1,63})"')


def _types_in(files: list[Path]) -> set[str]:
    """The resource types named in the files: a byte scan, far cheaper than parsing, in pieces
    (a `.gz` file within the gzip limits)."""
    found: set[str] = set()
    for path in files:
        if not path.is_file():
            continue
        try:
            with inputs.open_input(path) as fh:
                tail = b""
                while block := fh.read(4 * 1024 * 1024):
                    data = tail + block
                    found.update(m.decode() for m in set(_RESOURCE_TYPE.findall(data)))
                    tail = data[-256:]  # a name cut at the end of one piece is whole in the next
        except (OSError, ValueError, EOFError):  # a bad or oversized gzip is reported when its turn comes
            continue
    return found


def _pool(workers: int, files: list[Path]) -> ProcessPoolExecutor:
    method = "fork" if _fork_is_safe() else "spawn"
    if method == "fork":  # forked workers inherit the validators instead of each building them
        warm(sorted(_types_in(files)))
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(method), initializer=gc.freeze
    )


@contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist now (the validators: a hundred thousand of them) out of the
    garbage collector's full passes while an import makes millions of short-lived ones; those
    passes were about a tenth of the import's time. Workers freeze what they inherit for good."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class _Unit:
    """One piece of work for a worker: a whole file, or a run of lines of an NDJSON file (a big
    NDJSON file is shared among the workers instead of keeping one of them busy)."""

    path: Path
    lines: list[tuple[int, str | None]] | None = None  # None: the whole file; a None line: too long
    last: bool = True  # the file's last piece
    error: str | None = None  # the file could not be read to its end
    lenient: bool = False  # invalid resources go to the quarantine instead of failing the file
    line_cap: int = inputs.MAX_LINE_BYTES


def _units(files: list[Path], lenient: bool = False) -> Iterator[_Unit]:
    """Bundles whole; NDJSON in pieces, so that memory stays bounded by a piece whatever the
    file's size, workers share a big file, and progress moves within it."""
    for path in files:
        if not (_is_ndjson(path) and path.is_file()):
            yield _Unit(path, lenient=lenient)
            continue
        cap = inputs.MAX_LINE_BYTES  # read now: the workers may have been forked before a change
        chunk: list[tuple[int, str | None]] = []
        chunk_bytes = 0
        try:
            for number, line in _ndjson_lines(path, cap):
                chunk.append((number, line))
                chunk_bytes += len(line) if line is not None else 0
                if len(chunk) == NDJSON_CHUNK_LINES or chunk_bytes >= NDJSON_CHUNK_BYTES:
                    yield _Unit(path, chunk, last=False, lenient=lenient, line_cap=cap)
                    chunk, chunk_bytes = [], 0
        except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:  # not text, bad or bomb gzip
            yield _Unit(path, [], error=f"{type(exc).__name__}: {exc}", lenient=lenient)
            continue
        yield _Unit(path, chunk, lenient=lenient, line_cap=cap)


def _prepare_unit(unit: _Unit) -> FilePrep:
    if unit.lines is None:
        return prepare_file(unit.path, unit.lenient)
    prep = FilePrep(unit.path, last=unit.last, lenient=unit.lenient,
                    chars=sum(len(line) if line is not None else unit.line_cap for _, line in unit.lines))  # fmt: skip
    if unit.error:
        prep.error = unit.error
        code = "too-costly" if unit.error.startswith(inputs.InputTooLarge.__name__) else "structure"
        prep.outcome = operation_outcome([issue(unit.error, code, str(unit.path))])
    else:
        try:
            _prepare_ndjson_lines(unit.path, unit.lines, prep, unit.line_cap)
        except RecursionError:  # a last resort: depth is refused when parsing
            prep.items, prep.quarantined = [], []
            prep.error, prep.outcome = _unreadable(unit.path, RecursionError())
    return prep


def _merge(into: FilePrep, piece: FilePrep) -> None:
    """Fold a later piece's outcome (not its items: those are written as they come) into `into`."""
    into.problems += piece.problems
    into.counts = dict(sorted((Counter(into.counts) + Counter(piece.counts)).items()))
    into.error, into.outcome = into.error or piece.error, into.outcome or piece.outcome
    into.last = piece.last


def _ordered(pool: ProcessPoolExecutor, units: Iterator[_Unit], ahead: int) -> Iterator[FilePrep]:
    """`pool.map` with at most `ahead` pieces in flight, so a large NDJSON file is not read whole
    into the work queue before the first piece is written."""
    in_flight: deque[Future[FilePrep]] = deque()
    for unit in units:
        in_flight.append(pool.submit(_prepare_unit, unit))
        if len(in_flight) >= ahead:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


def _data_bytes(path: Path) -> int:
    """Bytes of JSON a file holds: a .gz file's uncompressed size from its trailer (mod 4 GiB)."""
    if not path.is_file():
        return 0
    size = path.stat().st_size
    if path.name.endswith(".gz") and size >= 18:
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return max(size, int.from_bytes(fh.read(4), "little"))
    return size


def _progress_within(
    on_progress: ProgressCallback | None, before: ImportProgress, size: int
) -> Callable[[int, int], None] | None:
    """Progress inside a file written in pieces: its bytes counted as the share of its text written."""
    text = _data_bytes(before.path)
    if on_progress is None or not text:
        return None

    def piece_written(written: int, chars: int) -> None:
        within = min(size - 1, int(size * chars / text))
        on_progress(ImportProgress(before.path, before.bytes_done + within, before.bytes_total,
                                   before.resources_done + written))  # fmt: skip

    return piece_written


def import_paths(
    store: Store,
    paths: Iterable[str | Path],
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
    lenient: bool = False,
) -> ImportReport:
    """Import files; parsing, validation and indexing run in `workers` processes (default: one per
    CPU when there is more than a few MB to load and forking is safe) while this process writes.
    `lenient`: invalid resources go to the quarantine instead of failing their file."""
    files = expand(paths)
    sizes = [f.stat().st_size if f.is_file() else 0 for f in files]
    total, done, resources = sum(sizes), 0, 0
    if workers is None:  # parallel only where it pays and is safe; pass workers=N to insist
        worth_it = sum(map(_data_bytes, files)) > PARALLEL_BYTES
        workers = (os.cpu_count() or 1) if worth_it and _fork_is_safe() else 0
    report = ImportReport()
    size_of = dict(zip(files, sizes, strict=True))
    started = time.perf_counter()
    with ExitStack() as stack:
        if workers > 0:
            pool = stack.enter_context(_pool(workers, files))
            preps: Iterator[FilePrep] = _ordered(pool, _units(files, lenient), ahead=2 * workers + 2)
        else:
            preps = map(_prepare_unit, _units(files, lenient))
        stack.enter_context(_long_lived_objects_frozen())
        for first in preps:
            size = size_of.get(first.path, 0)
            within = _progress_within(on_progress, ImportProgress(first.path, done, total, resources), size)
            result = write_pieces(store, first, preps, within)
            report.files.append(result)
            done += size
            resources += result.resources
            if on_progress:
                on_progress(ImportProgress(first.path, done, total, resources))
    report.seconds = time.perf_counter() - started
    return report
