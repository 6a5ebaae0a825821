"""The R4 JSON rules fhir.resources does not enforce, checked on the JSON exactly as received.

fhir.resources (pydantic) checks structure, cardinality and formats, but it coerces while it checks
(`"true"` becomes True, `"42"` 42) and it takes empty or null values as absent. What the store
keeps is the JSON text, so this module checks that text's values itself:

- each primitive has the JSON type R4 gives it (json.html#primitive): boolean a JSON true/false,
  integer, unsignedInt and positiveInt a JSON number without a fraction in their range, decimal a
  JSON number, every other primitive a JSON string, and never an empty one;
- no empty object, no empty array and no null (ele-1: every element has a value or children), except
  a null in an array of primitives whose `_name` array carries an extension at the same position
  (or the other way round); an Extension has a value or extensions, not both (ext-1);
- a code, Coding or CodeableConcept under a required binding whose value set is in the R4 core
  definitions (`value_sets.json`, built by scripts/build_fhir_value_sets.py) is from that value set.

Element types come from the fhir.resources.R4B models' field metadata (R4 and R4B share the types
the store uses), compiled once per model into a table keyed by JSON name. Each problem is an
OperationOutcome issue with a FHIRPath expression (`Patient.name[0].given[1]`); the primitive's
`_name` part is reported at the primitive (`Patient.name[0].given[1].extension[0].url`).
"""

from __future__ import annotations

import json
import math
import re
import sys
import typing
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources as package_files
from typing import Any

from local_fhir.errors import issue

PRIMITIVE, COMPLEX, RESOURCE, EXTENSION, OTHER = 0, 1, 2, 3, 4  # OTHER: a type this module does not know
INTEGERS = {"integer": (-(2**31), 2**31 - 1), "unsignedInt": (0, 2**31 - 1), "positiveInt": (1, 2**31 - 1)}
# Constrained Quantity profiles carry Quantity's bindings (their elements are Quantity's).
_QUANTITY_PROFILES = {"Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"}
_NOT_R4 = {"fhir_comments"}  # accepted by fhir.resources (DSTU2 JSON), not part of R4 JSON
# R4's uuid (fhir.resources also wants version 4, which R4 does not: validation.py drops that error).
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Field:
    kind: int
    many: bool
    prim: str = ""  # PRIMITIVE: the FHIR type name (boolean, integer, string, code, ...)
    model: Any = None  # COMPLEX: the fhir.resources model class
    name: str = ""  # EXTENSION (`_x`): the primitive's JSON name
    binding: tuple[str, str, dict[str, frozenset[str]]] | None = None  # (type, value set, codes)
    json: int = 0  # PRIMITIVE: the JSON type it takes (_STRING, _BOOLEAN, _INTEGER, _DECIMAL)
    plain: bool = False  # PRIMITIVE: any non-empty JSON string will do (no binding, no pattern here)


@cache
def _value_sets() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        package_files.files("local_fhir").joinpath("value_sets.json").read_text(encoding="utf-8")
    )
    return data


@cache
def _codes(url: str) -> dict[str, frozenset[str]]:
    return {system: frozenset(codes) for system, codes in _value_sets()["valueSets"][url].items()}


def binding(path: str) -> tuple[str, str, dict[str, frozenset[str]]] | None:
    """(element type, value set url, {system: codes}) of the required binding at an element path."""
    found = _value_sets()["bindings"].get(path)
    if found is None:
        return None
    return found["type"], found["valueSet"], _codes(found["valueSet"])


def value_set(url: str) -> dict[str, frozenset[str]] | None:
    """{system: codes} of a shipped value set (None when it is not shipped)."""
    return _codes(url) if url in _value_sets()["valueSets"] else None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the element's own type, whether it repeats) from a field annotation."""
    many = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, many
            annotation = args[0]
        elif origin is list:
            many = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, many


def _primitive_name(annotation: Any) -> str | None:
    if annotation is bool:
        return "boolean"
    for meta in reversed(getattr(annotation, "__metadata__", ())):
        name = getattr(meta, "__visit_name__", None)
        if isinstance(name, str):
            return name
    if typing.get_args(annotation)[:1] == (uuid.UUID,):  # fhir.resources types uuid as UUID
        return "uuid"
    return None


def _top_level(model: type) -> bool:
    """A FHIR type of its own (HumanName, Timing, Patient), not a backbone element (PatientContact)."""
    return model.__module__.rsplit(".", 1)[-1] == model.__name__.lower()


_paths: dict[type, str] = {}  # model -> element path its bindings are defined at ("Patient.contact")


def _base_path(model: Any) -> str:
    """Where a model's elements are defined: its own name for a FHIR type, the element path for
    a backbone element (found from its resource down, whatever was compiled first)."""
    if model.__name__ in _QUANTITY_PROFILES:
        return "Quantity"
    name: str = model.__name__
    if _top_level(model) or model in _paths:
        return _paths.get(model, name)
    module = sys.modules.get(model.__module__)
    root = next((v for v in vars(module).values() if isinstance(v, type) and _top_level(v)
                 and v.__module__ == model.__module__), None) if module else None  # fmt: skip
    todo, seen = ([root] if root is not None else []), set()
    while todo and model not in _paths:  # compiling the tables above it names its path
        current = todo.pop(0)
        if current in seen or current is model:
            continue
        seen.add(current)
        todo += [f.model for f in spec(current).values() if f.kind == COMPLEX and not _top_level(f.model)]
    return _paths.get(model, name)


@cache
def spec(model: Any) -> dict[str, Field]:
    """JSON name -> Field for a model class (compiled once)."""
    from fhir_core.types import FhirBase

    base = _paths.setdefault(model, _base_path(model))
    out: dict[str, Field] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if name in _NOT_R4 or name == "resource_type":
            continue
        inner, many = _unwrap(info.annotation)
        if key.startswith("_"):
            out[key] = Field(EXTENSION, many, name=key[1:])
            continue
        if isinstance(inner, type) and issubclass(inner, FhirBase):
            child = inner.get_model_klass()
            if child.__name__ == "Resource":
                out[key] = Field(RESOURCE, many)
                continue
            if not _top_level(child):
                _paths.setdefault(child, f"{base}.{key}")
            bound = binding(f"{base}.{key}") if child.__name__ in ("Coding", "CodeableConcept") else None
            out[key] = Field(COMPLEX, many, model=child, binding=bound)
            continue
        prim = _primitive_name(inner)
        if prim is None:  # a type this module does not know (none in fhir.resources 8.3): pydantic judges it
            out[key] = Field(OTHER, many)
            continue
        bound = binding(f"{base}.{key}") if prim == "code" else None
        json_kind = _json_kind(prim)
        plain = json_kind == _STRING and bound is None and prim != "uuid"
        out[key] = Field(PRIMITIVE, many, prim=prim, binding=bound, json=json_kind, plain=plain)
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, int | float | Decimal):
        return f"the number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# A path is built only when a problem is found: the root's name, or (parent path, key or index).
PathT = Any
_STRING, _BOOLEAN, _INTEGER, _DECIMAL = 0, 1, 2, 3


def _json_kind(prim: str) -> int:
    if prim == "boolean":
        return _BOOLEAN
    if prim in INTEGERS:
        return _INTEGER
    return _DECIMAL if prim == "decimal" else _STRING


def render(path: PathT) -> str:
    """FHIRPath text of a lazily built path."""
    steps: list[str] = []
    while isinstance(path, tuple):
        path, step = path
        steps.append(f"[{step}]" if type(step) is int else f".{step}")
    return str(path) + "".join(reversed(steps))


class Checker:
    """Collects the problems of one resource (a new one per resource: it is cheap)."""

    __slots__ = ("issues", "model_of")

    def __init__(self, model_of: Any) -> None:
        self.issues: list[dict[str, Any]] = []
        self.model_of = model_of  # resourceType -> model class (raises for an unknown type)

    def add(self, path: PathT, message: str, code: str = "structure") -> None:
        self.issues.append(issue(message, code, render(path)))

    # -- resources and complex elements ---------------------------------------------------------
    def resource(self, obj: dict[str, Any], path: PathT, nested: bool = True) -> None:
        rtype = obj.get("resourceType")
        try:
            model = self.model_of(rtype)
        except (ValueError, KeyError, AttributeError, TypeError):
            self.add((path, "resourceType"), f"unknown resourceType {rtype!r}", "not-supported")
            return
        self.members(obj, model, (path, f"ofType({rtype})") if nested else path, resource=True)

    def members(self, obj: dict[str, Any], model: Any, path: PathT, resource: bool = False,
                primitive: bool = False) -> None:  # fmt: skip
        """The elements of an object; `primitive`: the `_name` object of a primitive (its id and
        extensions), whose ele-1 depends on the value beside it."""
        table = spec(model)
        for key, value in obj.items():
            field = table.get(key)
            if field is None:
                if not (resource and key == "resourceType"):
                    self.add((path, key), f"unknown element {key!r} in {model.__name__}")
                continue
            kind = field.kind
            if kind == OTHER:
                continue
            if kind == EXTENSION:
                name = field.name
                target = table.get(name)
                if target is None or target.kind != PRIMITIVE:
                    self.add((path, key), f"unknown element {key!r} in {model.__name__}")
                elif not target.many:
                    self.primitive_extension(value, (path, name), name, obj.get(name) is not None)
                elif name not in obj:  # with the values: checked together with them
                    self.primitive_list(None, value, (path, name), name)
                continue
            if value is None:
                self.add((path, key), "null is not allowed (an element has a value or children: ele-1)")
            elif field.many:
                if type(value) is not list:
                    self.add((path, key), f"{key} repeats: it must be a JSON array, not {_describe(value)}")
                elif not value:
                    self.add((path, key), "an empty array is not allowed (leave the element out)")
                elif kind == PRIMITIVE:
                    self.primitive_list(value, obj.get(f"_{key}"), (path, key), key, field)
                else:
                    where = (path, key)
                    for i, item in enumerate(value):
                        self.one(item, field, (where, i))
            elif type(value) is list:
                self.add((path, key), f"{key} does not repeat: it must not be a JSON array")
            elif kind == PRIMITIVE:
                if not (field.plain and type(value) is str and value):  # else: nothing more to check
                    self.primitive(value, field, path, key)
            else:
                self.one(value, field, (path, key))
        if not resource and not primitive and len(obj) == 1 and "id" in obj:
            self.add(path, "an element needs a value or children other than id (ele-1)")
        if "url" in obj and model.__name__ == "Extension":
            has_value = any(k.startswith(("value", "_value")) for k in obj)
            if has_value == ("extension" in obj):
                self.add(path, "an extension has either a value[x] or extensions, not both and not neither (ext-1)",
                         "invariant")  # fmt: skip

    def one(self, value: Any, field: Field, where: PathT) -> None:
        if value is None:
            self.add(where, "null is not allowed (an element has a value or children: ele-1)")
        elif field.kind == PRIMITIVE:
            self.primitive(value, field, where)
        elif type(value) is not dict:
            self.add(where, f"must be a JSON object, not {_describe(value)}")
        elif not value:
            self.add(where, "an empty object is not allowed (ele-1)")
        elif field.kind == RESOURCE:
            self.resource(value, where)
        else:
            self.members(value, field.model, where)
            if field.binding is not None:
                self.coded(value, field.binding, where)

    # -- primitives ------------------------------------------------------------------------------
    def primitive(self, value: Any, field: Field, parent: PathT, key: str | int | None = None) -> None:
        """A primitive value at `parent` (or at (parent, key) when a key is given)."""
        kind = type(value)
        json_kind = field.json
        if json_kind == _STRING and kind is str:  # the common case first
            if value and field.plain:
                return
            bound = field.binding
            if value and bound is not None and any(value in codes for codes in bound[2].values()):
                return
        elif json_kind == _BOOLEAN and kind is bool:
            return
        elif json_kind == _INTEGER and kind is int:
            low, high = INTEGERS[field.prim]
            if low <= value <= high:
                return
        elif json_kind == _DECIMAL and (kind is int or (kind in (Decimal, float) and math.isfinite(value))):
            return
        self.primitive_problem(value, field, parent if key is None else (parent, key))

    def primitive_problem(self, value: Any, field: Field, where: PathT) -> None:
        prim = field.prim
        kind = type(value)
        if prim == "boolean":
            self.add(where, f"a boolean must be JSON true or false, not {_describe(value)}", "value")
        elif prim in INTEGERS:
            if kind is not int:
                self.add(where, f"an {prim} must be a JSON number without a fraction, not {_describe(value)}",
                         "value")  # fmt: skip
            else:
                low, high = INTEGERS[prim]
                self.add(where, f"{value} is outside the range of {prim} ({low} to {high})", "value")
        elif prim == "decimal":
            if kind not in (int, Decimal, float):
                self.add(where, f"a decimal must be a JSON number, not {_describe(value)}", "value")
            else:
                self.add(where, f"{value} is not a finite number", "value")
        elif kind is not str:
            self.add(where, f"a {prim} must be a JSON string, not {_describe(value)}", "value")
        elif not value:
            self.add(where, f"an empty string is not a valid {prim} (leave the element out)", "value")
        elif prim == "uuid" and not _UUID.fullmatch(value):
            self.add(where, f"{value!r} is not a uuid (urn:uuid: and lower-case hex)", "value")
        elif field.binding is not None:
            _, url, codes = field.binding
            if not any(value in c for c in codes.values()):
                known = ", ".join(sorted(set().union(*codes.values())))
                self.add(where, f"{value!r} is not in the required value set {url} ({known})", "code-invalid")

    def primitive_extension(self, value: Any, where: PathT, name: str, has_value: bool) -> None:
        """`_name` of a primitive that does not repeat: its id and extensions."""
        if value is None:
            self.add(where, f"null is not allowed for _{name}")
        elif type(value) is not dict:
            self.add(where, f"_{name} must be a JSON object, not {_describe(value)}")
        elif not value:
            self.add(where, f"an empty object is not allowed for _{name} (ele-1)")
        else:
            self.members(value, _element_model(), where, primitive=True)
            if not has_value and "extension" not in value:
                self.add(where, f"{name} has no value, so _{name} needs an extension (ele-1)")

    def primitive_list(self, values: list[Any] | None, extras: Any, where: PathT, name: str,
                       field: Field | None = None) -> None:  # fmt: skip
        """A repeating primitive and its `_name` array: the positions line up, and a position is
        null in one array only where the other has something."""
        if extras is None and values is not None:  # the common case: no extensions
            for i, value in enumerate(values):
                if value is None:
                    self.add((where, i), f"null in {name} needs an entry with an extension at the same position of _{name} (ele-1)")
                elif field is not None:
                    self.primitive(value, field, where, i)
            return
        if extras is not None:
            if type(extras) is not list:
                self.add(where, f"_{name} must be a JSON array, not {_describe(extras)}")
                extras = None
            elif not extras:
                self.add(where, f"an empty array is not allowed for _{name}")
                extras = None
            elif values is not None and len(extras) != len(values):
                self.add(where, f"{name} and _{name} must have the same length ({len(values)} and {len(extras)})")
        count = max(len(values or ()), len(extras or ()))
        for i in range(count):
            value = values[i] if values is not None and i < len(values) else None
            extra = extras[i] if extras is not None and i < len(extras) else None
            at = (where, i)
            if value is None and extra is None:
                self.add(at, f"null in {name} needs an entry with an extension at the same position of _{name} (ele-1)")
                continue
            if value is not None and field is not None:
                self.primitive(value, field, at)
            if extra is not None:
                if type(extra) is not dict or not extra:
                    self.add(at, f"_{name}[{i}] must be a JSON object with an id or extensions")
                else:
                    self.members(extra, _element_model(), at, primitive=True)
                    if value is None and "extension" not in extra:
                        self.add(at, f"null in {name} needs an extension in _{name}[{i}] (ele-1)")

    # -- required bindings on Coding and CodeableConcept -----------------------------------------
    def coded(self, value: dict[str, Any], bound: tuple[str, str, dict[str, frozenset[str]]], where: PathT) -> None:
        kind, url, codes = bound
        codings = [value] if kind == "Coding" else value.get("coding")
        if not isinstance(codings, list):
            codings = []
        for coding in codings:
            if isinstance(coding, dict) and coding.get("code") in codes.get(str(coding.get("system")), ()):
                return
        given = ", ".join(
            f"{c.get('system')}|{c.get('code')}" for c in codings if isinstance(c, dict)
        ) or "no coding"
        self.add(where, f"the required value set {url} has none of the codes given ({given})", "code-invalid")


@cache
def _element_model() -> type:
    from fhir.resources.R4B import get_fhir_model_class

    model: type = get_fhir_model_class("Element")
    return model


def check(resource: dict[str, Any], model_of: Any) -> list[dict[str, Any]]:
    """The R4 JSON problems of a resource (a dict with a resourceType), paths from its type name."""
    checker = Checker(model_of)
    checker.resource(resource, str(resource.get("resourceType")), nested=False)
    return checker.issues


def expression(resource: dict[str, Any], loc: tuple[Any, ...], model_of: Any) -> str:
    """The FHIRPath of a fhir.resources error location, written as `check` writes its own: a
    primitive's `_name` at the primitive, `.ofType(T)` after a resource inside the resource."""
    out = str(resource.get("resourceType"))
    node: Any = resource
    table: dict[str, Field] | None = spec(model_of(out))
    field: Field | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if field is not None and field.kind == RESOURCE:
                table = _enter_resource(node, model_of)
                out += f".ofType({node.get('resourceType')})" if table is not None else ""
            continue
        key = str(part)
        field = table.get(key) if table is not None else None
        node = node.get(key) if isinstance(node, dict) else None
        out += f".{field.name}" if field is not None and field.kind == EXTENSION else f".{key}"
        if field is None:
            table = None
        elif field.kind == COMPLEX:
            table = spec(field.model)
        elif field.kind == EXTENSION:
            table = spec(_element_model())
        elif field.kind == RESOURCE and not field.many:
            table = _enter_resource(node, model_of)
            out += f".ofType({node.get('resourceType')})" if table is not None else ""
        else:
            table = None
    return out


def _enter_resource(node: Any, model_of: Any) -> dict[str, Field] | None:
    if not isinstance(node, dict):
        return None
    try:
        return spec(model_of(node.get("resourceType")))
    except (ValueError, KeyError, AttributeError, TypeError):
        return None


def compile_tree(model: Any) -> None:
    """Compile the tables of a model and of every model under it (done before import workers
    fork, so that they inherit them, as they inherit fhir.resources' validators)."""
    seen: set[Any] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [f.model for f in spec(current).values() if f.kind == COMPLEX]
