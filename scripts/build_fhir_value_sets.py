#!/usr/bin/env python3
"""Build local_fhir/value_sets.json: the required bindings local_fhir checks, with their codes.

    python scripts/build_fhir_value_sets.py SOURCE... [--out local_fhir/value_sets.json]

SOURCE is any mix of files and folders in the official FHIR R4 (4.0.1) definition formats:
- the definition Bundles of the R4 download `definitions.json.zip` (`profiles-resources.json`,
  `profiles-types.json`, `valuesets.json`, `v3-codesystems.json`), or
- the files of the `hl7.fhir.r4.core` 4.0.1 package (`StructureDefinition-*.json`,
  `ValueSet-*.json`, `CodeSystem-*.json`), or
- any JSON file holding one such resource or a Bundle of them.

What it does:
1. every element of every StructureDefinition (snapshot, else differential) that has a binding of
   strength `required` and the type `code`, `Coding` or `CodeableConcept` gives a binding
   (`Patient.gender` -> `http://hl7.org/fhir/ValueSet/administrative-gender`);
2. each bound ValueSet is expanded from its `compose`: included concept lists, whole code systems
   (from their CodeSystem, `content` = complete, nested concepts included), other value sets,
   excludes. A value set that cannot be expanded from the sources alone (a filter, an external code
   system such as BCP-13 mime types or UCUM as a whole, a missing CodeSystem) is left out, and so is
   its binding: local_fhir then does not check it. The script lists what it left out on stderr.

The output is deterministic (sorted) and committed; local_fhir never reads the sources at run time.

Sources used for the committed file: the full R4 definitions are not in this checkout nor in
../shared/data/fhir-r4 (which holds only the search parameters and the patient compartment), and
the build machine has no network. The committed file was therefore built from
`scripts/fhir_r4_definitions/required-bindings-extract.json`: an extract in the official formats
(StructureDefinition differentials holding only the required bindings, ValueSets, CodeSystems
holding only the codes) of the R4 4.0.1 definitions, for the types local_fhir searches in full,
the Bundle, and the data types they use. Its codes were checked against the hl7.fhir.r4.core 4.0.1
files where those could be read, and against the element short descriptions `fhir.resources.R4B`
carries. Run this script on the official files to rebuild it in full:

    python scripts/build_fhir_value_sets.py ../shared/data/fhir-r4/definitions   # once unpacked there
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "local_fhir" / "value_sets.json"
BOUND_TYPES = {"code", "Coding", "CodeableConcept"}


def _resources(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    if doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry") or []:
            yield from _resources(entry.get("resource"))
    elif doc.get("resourceType") in ("StructureDefinition", "ValueSet", "CodeSystem"):
        yield doc


def load(sources: Iterable[Path]) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """(structure definitions, value sets by url, code systems by url, files read)."""
    files: list[Path] = []
    for source in sources:
        files += sorted(source.rglob("*.json")) if source.is_dir() else [source]
    sds: list[dict[str, Any]] = []
    value_sets: dict[str, Any] = {}
    code_systems: dict[str, Any] = {}
    read: list[str] = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found = False
        for res in _resources(doc):
            found = True
            kind, url = res["resourceType"], res.get("url")
            if kind == "StructureDefinition":
                sds.append(res)
            elif kind == "ValueSet" and url:
                value_sets.setdefault(url, res)
            elif kind == "CodeSystem" and url:
                code_systems.setdefault(url, res)
        if found:
            read.append(path.name)
    return sds, value_sets, code_systems, read


def bindings(sds: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Element path -> {valueSet (no version), type} for the required bindings of coded elements."""
    out: dict[str, dict[str, str]] = {}
    for sd in sds:
        if sd.get("derivation") == "constraint":  # profiles restate their base's bindings
            continue
        elements = (sd.get("snapshot") or sd.get("differential") or {}).get("element") or []
        for element in elements:
            binding = element.get("binding") or {}
            types = {t.get("code") for t in element.get("type") or []}
            path = element.get("path", "")
            if binding.get("strength") != "required" or not binding.get("valueSet") or "[x]" in path:
                continue
            if len(types) != 1 or not types <= BOUND_TYPES:
                continue
            out[path] = {"valueSet": binding["valueSet"].split("|", 1)[0], "type": types.pop()}
    return out


class Unexpandable(Exception):
    pass


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
                raise Unexpandable(f"the code system {system} is not in the sources")
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
        raise Unexpandable(f"the value set {url} is not in the sources")
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


def build(sources: list[Path]) -> tuple[dict[str, Any], list[str]]:
    sds, value_sets, code_systems, read = load(sources)
    found = bindings(sds)
    expanded: dict[str, dict[str, list[str]]] = {}
    skipped: list[str] = []
    kept: dict[str, dict[str, str]] = {}
    for path, binding in sorted(found.items()):
        url = binding["valueSet"]
        if url not in expanded:
            try:
                codes = expand(url, value_sets, code_systems)
            except Unexpandable as exc:
                skipped.append(f"{path}: {url} not expanded ({exc})")
                continue
            expanded[url] = {system: sorted(c) for system, c in sorted(codes.items()) if c}
        if expanded[url]:
            kept[path] = binding
    doc = {
        "fhirVersion": "4.0.1",
        "generator": "scripts/build_fhir_value_sets.py",
        "sources": sorted(read),
        "bindings": kept,
        "valueSets": {url: expanded[url] for url in sorted({b["valueSet"] for b in kept.values()})},
    }
    return doc, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=Path, help="definition files or folders")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    doc, skipped = build(args.sources)
    if not doc["bindings"]:
        print("no required bindings found in the sources", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in skipped:
        print(f"not checked: {line}", file=sys.stderr)
    print(f"{args.out}: {len(doc['bindings'])} bindings, {len(doc['valueSets'])} value sets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
