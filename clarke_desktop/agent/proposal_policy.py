"""What the chart assistant may propose to write, how a proposal is shown, and its seal. No Qt.

A proposed write reaches the record only after a clinician approves it, so the approval card must
show everything that will be written and nothing may be written that the card did not show:

- `WHITELIST`: per writable resource type, the elements the assistant may write (and, inside
  them, the parts of each data type). `refusals(resource)` names every element outside it by a
  FHIRPath-style path (`MedicationRequest.extension[0]`) with the reason; a proposal with any
  refusal is never offered for approval. Refused on purpose: extensions and modifier extensions
  (meaning the card cannot show), the `text` narrative (it can say something other than the data),
  `contained` resources, `meta`, `id`, `identifier`, references to any resource but the patient
  (another patient's record, a prescriber the clinician did not choose), `doNotPerform` (it
  reverses a request's meaning), status "entered-in-error", invisible or control characters (they
  can make a line read differently from what it holds), over-long text and unknown keys.
- `describe(resource)`: the complete resource as readable lines, one per element ("Dosage 2 ›
  Dose: 5 mg", "Note: …"); every value written appears in a line.
- `canonical_json` / `resource_digest`: the sha256 of the canonical JSON, taken when a proposal
  is shown and checked again at write time, so what is written is byte for byte what was approved.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

MAX_STRING = 2000  # characters in one value: a card line the clinician can still read in full
MAX_LINES = 120  # elements in one proposal: beyond this nobody checks every line before approving
MAX_DEPTH = 24  # nesting shown before `describe` gives up (only refused proposals get this deep)


@dataclass(frozen=True)
class Element:
    """One element of a whitelist: a single value or a list; a primitive or a complex type."""

    many: bool = False
    children: Mapping[str, Element] | None = None  # None: a primitive (string, number, boolean)


def one(children: Mapping[str, Element] | None = None) -> Element:
    return Element(False, children)


def many(children: Mapping[str, Element] | None = None) -> Element:
    return Element(True, children)


VALUE = one()  # a primitive
VALUES = many()  # a list of primitives

# --- data types (only the parts the card can show in full) -----------------------------------
CODING: Mapping[str, Element] = {"system": VALUE, "code": VALUE, "display": VALUE}
CONCEPT: Mapping[str, Element] = {"coding": many(CODING), "text": VALUE}
QUANTITY: Mapping[str, Element] = {
    "value": VALUE, "comparator": VALUE, "unit": VALUE, "system": VALUE, "code": VALUE,
}  # fmt: skip
SIMPLE_QUANTITY: Mapping[str, Element] = {k: v for k, v in QUANTITY.items() if k != "comparator"}
PERIOD: Mapping[str, Element] = {"start": VALUE, "end": VALUE}
RANGE: Mapping[str, Element] = {"low": one(SIMPLE_QUANTITY), "high": one(SIMPLE_QUANTITY)}
RATIO: Mapping[str, Element] = {"numerator": one(SIMPLE_QUANTITY), "denominator": one(SIMPLE_QUANTITY)}
ANNOTATION: Mapping[str, Element] = {"text": VALUE}  # no author or time: the approver is the author
PATIENT_REFERENCE: Mapping[str, Element] = {"reference": VALUE}  # set in code to the open patient
TIMING: Mapping[str, Element] = {
    "event": VALUES,
    "repeat": one({
        "boundsDuration": one(SIMPLE_QUANTITY), "boundsPeriod": one(PERIOD), "count": VALUE, "countMax": VALUE,
        "duration": VALUE, "durationMax": VALUE, "durationUnit": VALUE, "frequency": VALUE,
        "frequencyMax": VALUE, "period": VALUE, "periodMax": VALUE, "periodUnit": VALUE,
        "dayOfWeek": VALUES, "timeOfDay": VALUES, "when": VALUES, "offset": VALUE,
    }),
    "code": one(CONCEPT),
}  # fmt: skip
DOSAGE: Mapping[str, Element] = {
    "sequence": VALUE, "text": VALUE, "additionalInstruction": many(CONCEPT), "patientInstruction": VALUE,
    "timing": one(TIMING), "asNeededBoolean": VALUE, "asNeededCodeableConcept": one(CONCEPT),
    "site": one(CONCEPT), "route": one(CONCEPT), "method": one(CONCEPT),
    "doseAndRate": many({
        "type": one(CONCEPT), "doseRange": one(RANGE), "doseQuantity": one(SIMPLE_QUANTITY),
        "rateRatio": one(RATIO), "rateRange": one(RANGE), "rateQuantity": one(SIMPLE_QUANTITY),
    }),
    "maxDosePerPeriod": one(RATIO), "maxDosePerAdministration": one(SIMPLE_QUANTITY),
    "maxDosePerLifetime": one(SIMPLE_QUANTITY),
}  # fmt: skip
_OBSERVATION_VALUE: Mapping[str, Element] = {
    "valueQuantity": one(QUANTITY), "valueCodeableConcept": one(CONCEPT), "valueString": VALUE,
    "valueBoolean": VALUE, "valueInteger": VALUE, "valueRange": one(RANGE), "valueRatio": one(RATIO),
    "valueDateTime": VALUE, "dataAbsentReason": one(CONCEPT), "interpretation": many(CONCEPT),
}  # fmt: skip
_REFERENCE_RANGE: Mapping[str, Element] = {
    "low": one(SIMPLE_QUANTITY), "high": one(SIMPLE_QUANTITY), "type": one(CONCEPT), "text": VALUE,
}  # fmt: skip

# --- the writable resource types (agent.assistant.WRITE_TYPES) --------------------------------
WHITELIST: Mapping[str, Mapping[str, Element]] = {
    "MedicationRequest": {
        "resourceType": VALUE, "status": VALUE, "statusReason": one(CONCEPT), "intent": VALUE,
        "category": many(CONCEPT), "priority": VALUE, "medicationCodeableConcept": one(CONCEPT),
        "subject": one(PATIENT_REFERENCE), "authoredOn": VALUE, "reasonCode": many(CONCEPT),
        "courseOfTherapyType": one(CONCEPT), "note": many(ANNOTATION), "dosageInstruction": many(DOSAGE),
        "dispenseRequest": one({
            "validityPeriod": one(PERIOD), "numberOfRepeatsAllowed": VALUE, "quantity": one(SIMPLE_QUANTITY),
            "expectedSupplyDuration": one(SIMPLE_QUANTITY),
        }),
    },
    "Observation": {
        "resourceType": VALUE, "status": VALUE, "category": many(CONCEPT), "code": one(CONCEPT),
        "subject": one(PATIENT_REFERENCE), "effectiveDateTime": VALUE, "effectivePeriod": one(PERIOD),
        **_OBSERVATION_VALUE, "note": many(ANNOTATION), "bodySite": one(CONCEPT), "method": one(CONCEPT),
        "referenceRange": many(_REFERENCE_RANGE),
        "component": many({"code": one(CONCEPT), **_OBSERVATION_VALUE}),
    },
    "AllergyIntolerance": {
        "resourceType": VALUE, "clinicalStatus": one(CONCEPT), "verificationStatus": one(CONCEPT),
        "type": VALUE, "category": VALUES, "criticality": VALUE, "code": one(CONCEPT),
        "patient": one(PATIENT_REFERENCE), "onsetDateTime": VALUE, "onsetString": VALUE,
        "recordedDate": VALUE, "lastOccurrence": VALUE, "note": many(ANNOTATION),
        "reaction": many({
            "substance": one(CONCEPT), "manifestation": many(CONCEPT), "description": VALUE, "onset": VALUE,
            "severity": VALUE, "exposureRoute": one(CONCEPT), "note": many(ANNOTATION),
        }),
    },
    "ServiceRequest": {
        "resourceType": VALUE, "status": VALUE, "intent": VALUE, "category": many(CONCEPT),
        "priority": VALUE, "code": one(CONCEPT), "orderDetail": many(CONCEPT),
        "subject": one(PATIENT_REFERENCE), "occurrenceDateTime": VALUE, "occurrencePeriod": one(PERIOD),
        "occurrenceTiming": one(TIMING), "asNeededBoolean": VALUE, "asNeededCodeableConcept": one(CONCEPT),
        "authoredOn": VALUE, "performerType": one(CONCEPT), "reasonCode": many(CONCEPT),
        "bodySite": many(CONCEPT), "note": many(ANNOTATION), "patientInstruction": VALUE,
    },
}  # fmt: skip

# Why an element outside the whitelist is refused, where there is more to say than "not accepted".
_WHY: Mapping[str, str] = {
    "extension": "extensions are not accepted: their meaning cannot be shown or checked on the approval card",
    "modifierExtension": "modifier extensions change what the entry means and are never accepted",
    "contained": "contained resources are not accepted: they would be written without being shown",
    "meta": "meta (tags, security labels, profiles) is set by the record, not by the assistant",
    "id": "the record assigns the id of a new entry",
    "implicitRules": "implicit rules change how the entry must be read and are not accepted",
    "language": "the language of the entry is not accepted from the assistant",
    "identifier": "identifiers are not accepted: they could claim to be another system's record",
    "doNotPerform": "doNotPerform reverses the meaning of the request and is not accepted",
    "medicationReference": "name the medicine in medicationCodeableConcept: a referenced Medication "
    "could not be shown on the approval card",
}
_NARRATIVE = "a narrative (text) is not accepted: it could say something other than the data approved"
_STATUS_KEYS = frozenset({"status", "clinicalStatus", "verificationStatus"})
_ALLOWED_CONTROLS = frozenset("\n\t")


class Refusal(BaseModel):
    """One element a proposal may not write: where it is and why."""

    path: str  # FHIRPath-style, e.g. "MedicationRequest.dosageInstruction[1].extension[0]"
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def refusals(resource: Mapping[str, Any]) -> list[Refusal]:
    """Every element of a proposed resource that may not be written (empty: it may be offered)."""
    rtype = str(resource.get("resourceType"))
    spec = WHITELIST.get(rtype)
    if spec is None:
        allowed = ", ".join(WHITELIST)
        return [Refusal(path=rtype, reason=f"not a type the assistant may write (allowed: {allowed})")]
    out: list[Refusal] = []
    _check_object(resource, spec, rtype, out, top=True)
    if not out:
        count = len(describe(resource))
        if count > MAX_LINES:
            out.append(Refusal(path=rtype, reason=f"it has {count} elements; at most {MAX_LINES} can be "
                                                  "shown for approval"))  # fmt: skip
    return out


def _check_object(
    obj: Mapping[str, Any], spec: Mapping[str, Element], path: str, out: list[Refusal], *, top: bool = False
) -> None:
    for key, value in obj.items():
        here = f"{path}.{key}"
        element = spec.get(key)
        if element is None:
            why = _why_not(key, value, top=top)
            if isinstance(value, list) and value:
                out.extend(Refusal(path=f"{here}[{i}]", reason=why) for i in range(len(value)))
            else:
                out.append(Refusal(path=here, reason=why))
        elif element.many:
            if not isinstance(value, list) or not value:
                out.append(Refusal(path=here, reason="must be a list with at least one entry"))
                continue
            for i, item in enumerate(value):
                _check_value(key, item, element, f"{here}[{i}]", out)
        else:
            _check_value(key, value, element, here, out)


def _check_value(key: str, value: Any, element: Element, path: str, out: list[Refusal]) -> None:
    if element.children is not None:
        if not isinstance(value, dict) or not value:
            out.append(Refusal(path=path, reason="must be an element with content"))
        else:
            _check_object(value, element.children, path, out)
        return
    if value is None or isinstance(value, dict | list):
        out.append(Refusal(path=path, reason="must be a single value"))
    elif isinstance(value, str):
        problem = _string_problem(value)
        if problem:
            out.append(Refusal(path=path, reason=problem))
        elif value == "entered-in-error" and _STATUS_KEYS & set(_segments(path)):
            out.append(Refusal(path=path, reason="a new entry cannot be marked entered-in-error"))
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(Refusal(path=path, reason="must be a finite number"))
    elif not isinstance(value, bool | int | float):
        out.append(Refusal(path=path, reason="must be a string, a number or true/false"))


def _why_not(key: str, value: Any, *, top: bool) -> str:
    if key == "text" and top:
        return _NARRATIVE
    if key in _WHY:
        return _WHY[key]
    item = value[0] if isinstance(value, list) and value else value
    if isinstance(item, dict) and "reference" in item:
        return "references to other resources are not accepted (only the patient's own, set by Clarke)"
    return "not an element the assistant may write here"


def _string_problem(value: str) -> str | None:
    if not value.strip():
        return "is empty"
    if len(value) > MAX_STRING:
        return f"is longer than {MAX_STRING} characters"
    for ch in value:
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in {"Cc", "Cf", "Co", "Cs", "Cn"}:
            return f"contains an invisible or control character (U+{ord(ch):04X})"
    return None


def _segments(path: str) -> list[str]:
    return [part.split("[", 1)[0] for part in path.split(".")]


# --- display ------------------------------------------------------------------------------------

_LABELS: Mapping[str, str] = {
    "resourceType": "Resource",
    "medicationCodeableConcept": "Medication",
    "subject": "Patient",
    "patient": "Patient",
    "dosageInstruction": "Dosage",
    "doseAndRate": "Dose and rate",
    "doseQuantity": "Dose",
    "doseRange": "Dose range",
    "rateQuantity": "Rate",
    "rateRatio": "Rate",
    "rateRange": "Rate range",
    "asNeededBoolean": "As needed",
    "asNeededCodeableConcept": "As needed for",
    "authoredOn": "Authored on",
    "reasonCode": "Reason",
    "statusReason": "Status reason",
    "effectiveDateTime": "Date",
    "effectivePeriod": "Period",
    "occurrenceDateTime": "Due",
    "occurrencePeriod": "Due",
    "occurrenceTiming": "Due",
    "onsetDateTime": "Onset",
    "onsetString": "Onset",
    "recordedDate": "Recorded",
    "clinicalStatus": "Clinical status",
    "verificationStatus": "Verification status",
    "valueQuantity": "Value",
    "valueCodeableConcept": "Value",
    "valueString": "Value",
    "valueBoolean": "Value",
    "valueInteger": "Value",
    "valueRange": "Value",
    "valueRatio": "Value",
    "valueDateTime": "Value",
    "dataAbsentReason": "No value because",
    "modifierExtension": "Modifier extension",
    "contained": "Contained resource",
    "text": "Narrative",
    "div": "Narrative text",
}
_SINGLE_TRANSPARENT = frozenset({"doseAndRate"})  # "Dosage › Dose: 5 mg" when there is one
_TRANSPARENT = frozenset({"repeat"})  # Timing.repeat: its parts read as the timing's own
_SYSTEMS: Mapping[str, str] = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://unitsofmeasure.org": "UCUM",
    "https://dmd.nhs.uk": "dm+d",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}
_HL7 = "http://terminology.hl7.org/CodeSystem/"


def describe(resource: Mapping[str, Any]) -> list[str]:
    """The complete resource as readable lines, one per element, in the order it was proposed.

    Every value in the resource appears in a line (a coding's code, display and system together;
    a quantity's comparator, value, unit, system and code together), so nothing can be written
    that these lines do not show."""
    out: list[str] = []
    _describe(resource, "", out, 0)
    return out


def _describe(value: Any, label: str, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        out.append(f"{label or 'Element'}: (nested too deeply to show)")
        return
    if isinstance(value, dict):
        compact = _compact(value)
        if compact is not None and label:
            out.append(f"{label}: {compact}")
            return
        if not value:
            out.append(f"{label or 'Element'}: (empty)")
        for key, child in value.items():
            if isinstance(child, list) and len(child) == 1 and key in _SINGLE_TRANSPARENT and label:
                _describe(child[0], label, out, depth + 1)
            else:
                _describe(child, _child_label(label, str(key), child), out, depth + 1)
    elif isinstance(value, list):
        if not value:
            out.append(f"{label}: (empty list)")
        for i, item in enumerate(value, 1):
            _describe(item, label if len(value) == 1 else f"{label} {i}", out, depth + 1)
    else:
        out.append(f"{label or 'Value'}: {_scalar(value)}")


def _child_label(parent: str, key: str, value: Any) -> str:
    if not parent:
        return _LABELS.get(key) or _words(key)
    if key == "text" and isinstance(value, str):
        return parent  # a concept's, a dosage's or a note's own words: "Dosage 2: one tablet daily"
    if key == "coding":
        return f"{parent} coding"
    if key in _TRANSPARENT:
        return parent
    name = _LABELS.get(key) if key != "text" else "Text"
    return f"{parent} › {name or _words(key)}"


def _words(key: str) -> str:
    """camelCase as words: "numberOfRepeatsAllowed" -> "Number of repeats allowed"."""
    words: list[str] = []
    for ch in key:
        if ch.isupper() and words:
            words.append(" ")
        words.append(ch.lower())
    text = "".join(words)
    return text[:1].upper() + text[1:] if text else "(unnamed)"


def _compact(value: Mapping[str, Any]) -> str | None:
    """One line for a coding, a quantity, a period or a reference, holding every part of it;
    None when the element has anything else (it is then shown part by part)."""
    keys = set(value)
    if not keys or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
    ):
        return None
    if keys <= {"value", "comparator", "unit", "system", "code"} and "value" in keys:
        if not isinstance(value["value"], int | float):
            return None
        text = f"{value.get('comparator', '')}{_scalar(value['value'])} {value.get('unit', '')}".strip()
        coded = " ".join(str(x) for x in (_system(value.get("system")), value.get("code")) if x)
        return f"{text} ({coded})" if coded else text
    if keys <= {"system", "code", "display"} and keys & {"code", "display"}:
        parts = [str(value["code"])] if "code" in value else []
        if "display" in value:
            parts.append(f"“{value['display']}”")
        if "system" in value:
            parts.append(f"({_system(value['system'])})")
        return " ".join(parts)
    if keys <= {"start", "end"}:
        if keys == {"start", "end"}:
            return f"from {value['start']} to {value['end']}"
        return f"from {value['start']}" if "start" in keys else f"until {value['end']}"
    if keys <= {"reference", "display"} and "reference" in keys:
        return f"{value['reference']}" + (f" “{value['display']}”" if "display" in value else "")
    return None


def _system(system: Any) -> str | None:
    if system is None:
        return None
    text = str(system)
    if text in _SYSTEMS:
        return _SYSTEMS[text]
    if text.startswith(_HL7) and len(text) > len(_HL7):
        return f"HL7 {text[len(_HL7) :]}"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return "(none)"
    return str(value)


# --- the seal -----------------------------------------------------------------------------------


def canonical_json(resource: Mapping[str, Any]) -> bytes:
    """The resource as canonical JSON (sorted keys, no spaces, UTF-8): what is shown, approved and
    written. ValueError for a value JSON cannot hold exactly (NaN, infinity)."""
    return json.dumps(
        resource, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def resource_digest(resource: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON."""
    return hashlib.sha256(canonical_json(resource)).hexdigest()


def without_server_fields(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A stored resource without what the record adds on writing (`id`, `meta`): compared with
    the approved resource to show it was written unchanged."""
    return {k: v for k, v in resource.items() if k not in {"id", "meta"}}
