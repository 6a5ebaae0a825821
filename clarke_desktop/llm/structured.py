"""Schema-constrained JSON: grammar conversion and the validate-and-retry policy both backends share."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from clarke_desktop.llm.base import InvalidModelOutput, LlmError, T

logger = logging.getLogger(__name__)

# Retries sample more freely: a greedy retry of the same prompt would repeat the same output.
FIRST_TEMPERATURE = 0.0
RETRY_TEMPERATURE = 0.7


def json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


@functools.lru_cache(maxsize=64)
def gbnf_for(schema: type[BaseModel]) -> str:
    """A llama.cpp GBNF grammar for the pydantic model's JSON schema; fails loudly, never falls back
    to "any JSON" (which is what llama-cpp-python's server does silently)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar: str = json_schema_to_gbnf(json.dumps(json_schema(schema)))  # unannotated return
        return grammar
    except Exception as exc:  # the converter raises plain Exceptions for unsupported constructs
        raise LlmError(
            f"the JSON schema of {schema.__name__} cannot be turned into a grammar: {exc}"
        ) from exc


def schema_literals(schema: type[BaseModel]) -> list[str]:
    """Text the grammar can force verbatim: property names (quoted, with their punctuation), enum
    and const values, and JSON keywords. Tokens inside these strings are the ones a model may rank
    very low when the grammar insists on them (a key it would not have written)."""
    literals = {"true", "false", "null", '": ', '", "', '{"', "}", "]"}

    def visit(node: object) -> None:
        if isinstance(node, dict):
            for name in (node.get("properties") or {}) if isinstance(node.get("properties"), dict) else {}:
                literals.update({f'"{name}"', f'{{"{name}": ', f', "{name}": ', f'"{name}":'})
            for value in node.get("enum") or []:
                literals.add(json.dumps(value))
            if "const" in node:
                literals.add(json.dumps(node["const"]))
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(json_schema(schema))
    return sorted(literals)


def is_complete_json(text: str) -> bool:
    """True once `text` is one whole JSON value: generation can stop there."""
    stripped = text.rstrip()
    if not stripped.endswith(("}", "]")):
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def validate_with_retries(
    generate: Callable[[int, float], str],
    schema: type[T],
    *,
    retries: int,
    model_name: str,
) -> T:
    """Call `generate(attempt, temperature)` until its text validates as `schema`.

    Malformed or invalid output is never passed on: after `retries` extra attempts the last
    validation problem is raised as InvalidModelOutput (model text is not put in the message,
    since it may contain patient data).
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    problem = ""
    for attempt in range(retries + 1):
        temperature = FIRST_TEMPERATURE if attempt == 0 else RETRY_TEMPERATURE
        text = generate(attempt, temperature)
        try:
            return schema.model_validate_json(text)
        except ValidationError as exc:
            problem = _summarise(exc)
            logger.info(
                "%s output failed %s validation (attempt %d/%d): %s",
                model_name,
                schema.__name__,
                attempt + 1,
                retries + 1,
                problem,
            )
    raise InvalidModelOutput(
        f"{model_name} did not produce a valid {schema.__name__} after {retries + 1} attempt(s): {problem}"
    )


def _summarise(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
