"""The shipped value sets (local_fhir/value_sets.json): rebuilt by the script from its committed
sources, and consistent with the codes fhir.resources' R4B models list for the same elements."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from local_fhir import r4json

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def builder() -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_fhir_value_sets

        return build_fhir_value_sets
    finally:
        sys.path.remove(str(REPO / "scripts"))


def test_the_script_rebuilds_the_committed_file(builder: Any, tmp_path: Path) -> None:
    out = tmp_path / "value_sets.json"
    assert builder.main([str(REPO / "scripts" / "fhir_r4_definitions"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (REPO / "local_fhir" / "value_sets.json").read_text(encoding="utf-8")


def test_the_script_expands_compose_rules(builder: Any, tmp_path: Path) -> None:
    """Whole code systems (nested concepts included), concept lists, excludes and other value sets;
    a value set it cannot expand is left out with its binding."""
    resources = [
        {"resourceType": "StructureDefinition", "type": "Thing", "differential": {"element": [
            {"path": "Thing.a", "type": [{"code": "code"}], "binding": {"strength": "required", "valueSet": "urn:vs:a|1"}},
            {"path": "Thing.b", "type": [{"code": "CodeableConcept"}], "binding": {"strength": "required", "valueSet": "urn:vs:b"}},
            {"path": "Thing.c", "type": [{"code": "code"}], "binding": {"strength": "required", "valueSet": "urn:vs:mime"}},
            {"path": "Thing.d", "type": [{"code": "code"}], "binding": {"strength": "extensible", "valueSet": "urn:vs:a"}},
        ]}},
        {"resourceType": "CodeSystem", "url": "urn:cs:1", "content": "complete",
         "concept": [{"code": "x", "concept": [{"code": "x1"}]}, {"code": "y"}]},
        {"resourceType": "ValueSet", "url": "urn:vs:a", "compose": {"include": [{"system": "urn:cs:1"}],
                                                                    "exclude": [{"system": "urn:cs:1", "concept": [{"code": "y"}]}]}},
        {"resourceType": "ValueSet", "url": "urn:vs:b", "compose": {"include": [{"valueSet": ["urn:vs:a"]},
                                                                                {"system": "urn:cs:2", "concept": [{"code": "z"}]}]}},
        {"resourceType": "ValueSet", "url": "urn:vs:mime", "compose": {"include": [{"system": "urn:ietf:bcp:13"}]}},
    ]  # fmt: skip
    (tmp_path / "defs.json").write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}))
    doc, skipped = builder.build([tmp_path])
    assert doc["bindings"] == {"Thing.a": {"valueSet": "urn:vs:a", "type": "code"},
                               "Thing.b": {"valueSet": "urn:vs:b", "type": "CodeableConcept"}}  # fmt: skip
    assert doc["valueSets"] == {"urn:vs:a": {"urn:cs:1": ["x", "x1"]},
                                "urn:vs:b": {"urn:cs:1": ["x", "x1"], "urn:cs:2": ["z"]}}  # fmt: skip
    assert len(skipped) == 1 and "Thing.c" in skipped[0] and "urn:ietf:bcp:13" in skipped[0]


def _r4b_code_lists() -> dict[str, list[str]]:
    """Element path -> the codes an R4B model field lists (its short description), for the
    elements the shipped file binds."""
    from fhir.resources.R4B import get_fhir_model_class

    out: dict[str, list[str]] = {}
    for path in r4json._value_sets()["bindings"]:
        parts = path.split(".")
        try:
            model = get_fhir_model_class(parts[0])
        except (ValueError, KeyError, AttributeError):
            continue
        for part in parts[1:-1]:
            field = r4json.spec(model).get(part)
            if field is None or field.model is None:
                break
            model = field.model
        else:
            info = next((f for f in model.model_fields.values() if f.alias == parts[-1]), None)
            listed = (info.json_schema_extra or {}).get("enum_values") if info is not None else None
            if isinstance(listed, list):
                out[path] = listed
    return out


def test_the_codes_agree_with_the_r4b_models() -> None:
    lists = _r4b_code_lists()
    assert len(lists) > 40  # the check covers most bindings
    for path, listed in lists.items():
        _, url, codes = r4json.binding(path) or ("", "", {})
        shipped = set().union(*codes.values())
        named = {c for c in listed if c != "+"}
        assert named <= shipped, (path, named - shipped)
        if "+" not in listed:  # a complete list: the same codes
            assert named == shipped, (path, url, shipped - named)


def test_bindings_are_compiled_where_the_elements_are() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    patient = r4json.spec(get_fhir_model_class("Patient"))
    assert patient["gender"].binding is not None and patient["gender"].binding[1].endswith("administrative-gender")
    contact = r4json.spec(patient["contact"].model)
    assert contact["gender"].binding is not None
    age = r4json.spec(get_fhir_model_class("Age"))  # a Quantity profile: Quantity's bindings
    assert age["comparator"].binding is not None


def test_a_backbone_element_compiled_first_still_finds_its_bindings() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    r4json.spec.cache_clear()
    r4json._paths.clear()
    try:
        contact = r4json.spec(get_fhir_model_class("PatientContact"))  # before Patient itself
        assert contact["gender"].binding is not None
        detail = get_fhir_model_class("ExplanationOfBenefitItemDetailSubDetail")
        r4json.spec(detail)
        assert r4json._paths[detail] == "ExplanationOfBenefit.item.detail.subDetail"
    finally:
        r4json.spec.cache_clear()
        r4json._paths.clear()
