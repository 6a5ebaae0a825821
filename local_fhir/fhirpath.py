"""A small FHIRPath evaluator for the forms used in R4 SearchParameter expressions.

Supported: paths (`Observation.subject`), unions (`a | b`), choice types (`Condition.onset` finds
`onsetDateTime`), type filters (`x.as(T)`, `x.ofType(T)`, `(x as T)`), `x.where(resolve() is T)`,
`x.where(field='value')` and `x.extension('url')`. Anything else raises `UnsupportedExpression`, so
the search parameters that use it are reported as unsupported instead of being evaluated wrongly.

The evaluator works on plain JSON (dicts/lists) and yields `(value, type_suffix)` pairs, where
`type_suffix` is the choice-type suffix when the value came from a `[x]` element (e.g. "DateTime").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Expression", "UnsupportedExpression", "compile_expression", "reference_type"]


class UnsupportedExpression(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[.()|=]))")

Step = tuple[str, str | None, str | None]  # (kind, arg1, arg2)


@dataclass(frozen=True)
class _Path:
    root: Any  # a type name (str) or a nested `_Union`
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class _Union:
    branches: tuple[_Path, ...]


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UnsupportedExpression(f"cannot parse {text!r} at {pos}")
        tokens.append(m.group(m.lastgroup or "op"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise UnsupportedExpression(f"expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> _Union:
        expr = self.union()
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek()!r}")
        return expr

    def union(self) -> _Union:
        branches = [self.term()]
        while self.peek() == "|":
            self.take("|")
            branches.append(self.term())
        return _Union(tuple(branches))

    def term(self) -> _Path:
        if self.peek() == "(":
            self.take("(")
            root: Any = self.union()
            self.take(")")
        else:
            root = self.take()
            if not root[0].isalpha():
                raise UnsupportedExpression(f"unexpected {root!r}")
        steps: list[Step] = []
        while True:
            tok = self.peek()
            if tok == ".":
                self.take(".")
                steps.append(self.step())
            elif tok == "as":
                self.take("as")
                steps.append(("as", self.take(), None))
            else:
                break
        return _Path(root, tuple(steps))

    def step(self) -> Step:
        name = self.take()
        if self.peek() != "(":
            return ("child", name, None)
        self.take("(")
        if name in ("as", "ofType"):
            type_name = self.take()
            self.take(")")
            return ("as", type_name, None)
        if name == "extension":
            url = self.take()
            self.take(")")
            return ("extension", url.strip("'"), None)
        if name == "where":
            first = self.take()
            if first == "resolve":
                self.take("(")
                self.take(")")
                self.take("is")
                type_name = self.take()
                self.take(")")
                return ("resolve_is", type_name, None)
            self.take("=")
            value = self.take()
            if not value.startswith("'"):
                raise UnsupportedExpression("where() supports only field='text'")
            self.take(")")
            return ("where_eq", first, value.strip("'"))
        raise UnsupportedExpression(f"function {name}() is not supported")


_REF_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def reference_type(ref: dict[str, Any]) -> str | None:
    """The resource type a Reference points at (from `reference`, else from `type`)."""
    text = ref.get("reference")
    if isinstance(text, str):
        m = _REF_TYPE.search(text)
        if m:
            return m.group(1)
    value = ref.get("type")
    return value if isinstance(value, str) else None


# Data types that can appear as a choice suffix (`valueQuantity`), so that `status` never picks up
# a sibling such as `statusReason`.
_CHOICE_TYPES = frozenset(
    [
        "Base64Binary",
        "Boolean",
        "Canonical",
        "Code",
        "Date",
        "DateTime",
        "Decimal",
        "Id",
        "Instant",
        "Integer",
        "Markdown",
        "Oid",
        "PositiveInt",
        "String",
        "Time",
        "UnsignedInt",
        "Uri",
        "Url",
        "Uuid",
        "Address",
        "Age",
        "Annotation",
        "Attachment",
        "CodeableConcept",
        "Coding",
        "ContactPoint",
        "Count",
        "Distance",
        "Duration",
        "HumanName",
        "Identifier",
        "Money",
        "Period",
        "Quantity",
        "Range",
        "Ratio",
        "Reference",
        "SampledData",
        "Signature",
        "Timing",
        "ContactDetail",
        "Contributor",
        "DataRequirement",
        "Expression",
        "ParameterDefinition",
        "RelatedArtifact",
        "TriggerDefinition",
        "UsageContext",
        "Dosage",
        "Meta",
    ]
)


def _choice_keys(name: str) -> frozenset[str]:
    return frozenset(name + t for t in _CHOICE_TYPES)


def _children(value: Any, name: str, choices: frozenset[str] | None = None) -> list[tuple[Any, str | None]]:
    if not isinstance(value, dict):
        return []
    if name in value:
        found = value[name]
        return [(item, None) for item in found] if isinstance(found, list) else [(found, None)]
    # Choice element `name[x]`: the JSON key is name + TypeName.
    out: list[tuple[Any, str | None]] = []
    for key in (choices if choices is not None else _choice_keys(name)) & value.keys():
        found, suffix = value[key], key[len(name) :]
        if isinstance(found, list):
            out.extend((item, suffix) for item in found)
        else:
            out.append((found, suffix))
    return out


def _type_matches(suffix: str | None, type_name: str) -> bool:
    if suffix is None:
        return True  # not a choice element: the element's declared type already fits
    return suffix.lower() == type_name.lower()


class Expression:
    """A compiled expression; `evaluate(resource)` yields `(value, choice_suffix)` pairs."""

    def __init__(self, text: str):
        self.text = text
        self._ast = _Parser(text).parse()
        # Per path: its steps with the choice keys of each child step worked out once.
        self._steps: dict[int, list[tuple[str, str, str | None, frozenset[str] | None]]] = {}
        self._prepare(self._ast)
        # Most expressions are a union of plain paths from the resource, once parenthesised ones
        # are opened up (`(A.value as X) | B.c` -> A.value.as(X), B.c): those are walked without the
        # recursive evaluator (same results; `evaluate_reference` keeps the general one).
        self._flat: list[tuple[str, list[tuple[str, str, str | None, frozenset[str] | None]]]] | None = (
            self._flatten(self._ast)
        )

    def _flatten(
        self, node: _Union
    ) -> list[tuple[str, list[tuple[str, str, str | None, frozenset[str] | None]]]] | None:
        out: list[tuple[str, list[tuple[str, str, str | None, frozenset[str] | None]]]] = []
        for branch in node.branches:
            steps = self._steps[id(branch)]
            if isinstance(branch.root, _Union):
                inner = self._flatten(branch.root)
                if inner is None:
                    return None
                out += [(root, inner_steps + steps) for root, inner_steps in inner]
            elif isinstance(branch.root, str):
                out.append((branch.root, steps))
            else:
                return None
        return out

    def _prepare(self, node: _Union) -> None:
        for branch in node.branches:
            if isinstance(branch.root, _Union):
                self._prepare(branch.root)
            self._steps[id(branch)] = [
                (kind, arg or "", arg2, _choice_keys(arg or "") if kind == "child" else None)
                for kind, arg, arg2 in branch.steps
            ]

    def branch_keys(self) -> frozenset[tuple[Any, ...]] | None:
        """The union's branches as comparable keys (None when it is not a union of plain paths):
        two expressions with the same keys select the same values."""
        if self._flat is None:
            return None
        return frozenset(
            (root, tuple((kind, arg, arg2) for kind, arg, arg2, _ in steps)) for root, steps in self._flat
        )

    def first_elements(self) -> frozenset[str] | None:
        """Top-level JSON keys the expression can start from (None: cannot tell).

        Lets the indexer skip expressions whose elements a resource does not have. A choice
        element narrowed by `as` starts from one key only (`value as Quantity` -> valueQuantity)."""
        keys: set[str] = set()

        def walk(node: _Union) -> bool:
            for branch in node.branches:
                if isinstance(branch.root, _Union):
                    if not walk(branch.root):
                        return False
                    continue
                if not branch.steps or branch.steps[0][0] not in ("child", "extension"):
                    return False
                kind, arg = branch.steps[0][0], branch.steps[0][1] or ""
                if kind == "extension":
                    keys.add("extension")
                elif len(branch.steps) > 1 and branch.steps[1][0] == "as":
                    type_name = branch.steps[1][1] or ""
                    keys.update((arg, arg + type_name[:1].upper() + type_name[1:]))  # plain or choice
                else:
                    keys.add(arg)  # the element as a JSON key, or as a choice (value -> valueQuantity)
                    keys.update(arg + t for t in _CHOICE_TYPES)
            return True

        return frozenset(keys) if walk(self._ast) else None

    def evaluate(self, resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
        if self._flat is None:
            return self._eval_union(self._ast, resource)
        out: list[tuple[Any, str | None]] = []
        rtype = resource.get("resourceType")
        for root, steps in self._flat:
            if root == rtype or root in ("Resource", "DomainResource"):
                out.extend(self._walk([(resource, None)], steps))
        return out

    def evaluate_reference(self, resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
        """The general recursive evaluator (what `evaluate` must agree with; used by tests)."""
        return self._eval_union(self._ast, resource)

    def _eval_union(self, node: _Union, resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
        out: list[tuple[Any, str | None]] = []
        for branch in node.branches:
            out.extend(self._eval_path(branch, resource))
        return out

    def _eval_path(self, node: _Path, resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
        if isinstance(node.root, _Union):
            current = self._eval_union(node.root, resource)
        elif node.root in (resource.get("resourceType"), "Resource", "DomainResource"):
            current = [(resource, None)]
        else:
            return []
        return self._walk(current, self._steps[id(node)])

    @staticmethod
    def _walk(
        current: list[tuple[Any, str | None]],
        steps: list[tuple[str, str, str | None, frozenset[str] | None]],
    ) -> list[tuple[Any, str | None]]:
        for kind, arg, arg2, choices in steps:
            nxt: list[tuple[Any, str | None]] = []
            if kind == "child":
                for value, _ in current:
                    if isinstance(value, dict) and arg in value:  # the common case, inlined
                        found = value[arg]
                        if isinstance(found, list):
                            nxt.extend((item, None) for item in found)
                        else:
                            nxt.append((found, None))
                    else:
                        nxt.extend(_children(value, arg, choices))
            elif kind == "as":
                nxt = [(v, s) for v, s in current if _type_matches(s, arg)]
            elif kind == "resolve_is":
                nxt = [(v, s) for v, s in current if isinstance(v, dict) and reference_type(v) == arg]
            elif kind == "where_eq":
                nxt = [(v, s) for v, s in current if isinstance(v, dict) and v.get(arg) == arg2]
            elif kind == "extension":
                for value, _ in current:
                    if isinstance(value, dict):
                        for ext in value.get("extension") or []:
                            if isinstance(ext, dict) and ext.get("url") == arg:
                                nxt.extend(_children(ext, "value"))
            current = nxt
            if not current:
                return []
        return current


def compile_expression(text: str) -> Expression:
    return Expression(text)
