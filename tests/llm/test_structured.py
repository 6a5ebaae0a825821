"""Validate-and-retry policy shared by both backends, driven by scripted outputs."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from clarke_desktop.llm.base import InvalidModelOutput, LlmError
from clarke_desktop.llm.structured import (
    FIRST_TEMPERATURE,
    RETRY_TEMPERATURE,
    gbnf_for,
    is_complete_json,
    validate_with_retries,
)


class Flag(BaseModel):
    label: str
    urgent: bool


def scripted(outputs: list[str]):
    calls: list[tuple[int, float]] = []

    def generate(attempt: int, temperature: float) -> str:
        calls.append((attempt, temperature))
        return outputs[attempt]

    return generate, calls


def test_first_valid_output_is_returned() -> None:
    generate, calls = scripted(['{"label": "AKI", "urgent": true}'])
    assert validate_with_retries(generate, Flag, retries=2, model_name="m") == Flag(label="AKI", urgent=True)
    assert calls == [(0, FIRST_TEMPERATURE)]


def test_malformed_output_is_retried_with_more_freedom() -> None:
    generate, calls = scripted(['{"label": "AKI", "urg', '{"label": "AKI", "urgent": false}'])
    assert validate_with_retries(generate, Flag, retries=1, model_name="m").urgent is False
    assert calls == [(0, FIRST_TEMPERATURE), (1, RETRY_TEMPERATURE)]


def test_invalid_after_retries_is_reported_not_passed_on() -> None:
    generate, calls = scripted(["not json", '{"label": 3}', '{"urgent": "maybe"}'])
    with pytest.raises(InvalidModelOutput) as raised:
        validate_with_retries(generate, Flag, retries=2, model_name="MedGemma")
    assert len(calls) == 3
    message = str(raised.value)
    assert "MedGemma" in message and "Flag" in message and "3 attempt" in message
    assert "maybe" not in message  # model text (possibly patient data) is not echoed


def test_negative_retries_rejected() -> None:
    generate, _ = scripted([])
    with pytest.raises(ValueError):
        validate_with_retries(generate, Flag, retries=-1, model_name="m")


def test_complete_json_detection() -> None:
    assert is_complete_json('{"a": {"b": [1, 2]}}  ')
    assert not is_complete_json('{"a": {"b": [1, 2]}')
    assert not is_complete_json('{"a": "}"')


def test_grammar_is_built_from_the_pydantic_schema() -> None:
    grammar = gbnf_for(Flag)
    assert "root ::=" in grammar
    assert '\\"label\\"' in grammar and '\\"urgent\\"' in grammar


def test_unconvertible_schema_fails_loudly() -> None:
    class Weird(BaseModel):
        model_config = {"json_schema_extra": {"$ref": "https://example.org/remote.json"}}
        x: int

    with pytest.raises(LlmError):
        gbnf_for(Weird)


def test_schema_literals_cover_keys_and_enums() -> None:
    from typing import Literal

    from clarke_desktop.llm.structured import schema_literals

    class Finding(BaseModel):
        severity: Literal["mild", "severe"]

    class Report(BaseModel):
        findings: list[Finding]
        urgent: bool

    literals = schema_literals(Report)
    assert '"findings"' in literals and '"severity"' in literals and '"urgent"' in literals
    assert '"mild"' in literals and '"severe"' in literals
