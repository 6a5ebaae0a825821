"""Small readers that turn FHIR R4 JSON elements into display strings, exactly as recorded.

They never invent or reformat a value beyond joining its recorded parts (a quantity's value and
unit, a name's prefix/given/family), so every string stays traceable to its resource.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation
from typing import Any

from clarke_desktop.schemas import SourceRef

Resource = dict[str, Any]


def source_of(resource: Resource) -> SourceRef:
    return SourceRef(
        resource_type=str(resource.get("resourceType", "")),
        id=str(resource.get("id", "")),
        version_id=(resource.get("meta") or {}).get("versionId"),
    )


def concept_text(concept: dict[str, Any] | None) -> str | None:
    """A CodeableConcept's human text: `.text`, else the first coding's display, else its code."""
    if not concept:
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return None


def concept_code(concept: dict[str, Any] | None) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return None


def status_code(concept: dict[str, Any] | None) -> str | None:
    """`clinicalStatus`/`verificationStatus` are CodeableConcepts whose code is the status."""
    code = concept_code(concept)
    return code.lower() if code else None


def format_number(value: Any) -> str:
    """A recorded number as written: 55 -> "55", 1.0 -> "1", 7.25 -> "7.25" (no rounding)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def quantity_text(quantity: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(value, unit) of a Quantity; unit is the human `unit`, else the UCUM `code`."""
    if not quantity or quantity.get("value") is None:
        return None, None
    comparator = quantity.get("comparator") or ""
    unit = quantity.get("unit") or quantity.get("code")
    return f"{comparator}{format_number(quantity['value'])}", (str(unit) if unit else None)


def human_name(names: list[dict[str, Any]] | None, *, with_prefix: bool = True) -> str | None:
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return str(name["text"])
    parts: list[str] = []
    if with_prefix:
        parts += [str(p) for p in name.get("prefix") or []]
    parts += [str(g) for g in name.get("given") or []]
    if name.get("family"):
        parts.append(str(name["family"]))
    return " ".join(parts) or None


def address_text(addresses: list[dict[str, Any]] | None) -> str | None:
    if not addresses:
        return None
    address = next((a for a in addresses if a.get("use") == "home"), addresses[0])
    if address.get("text"):
        return str(address["text"])
    parts = [str(line) for line in address.get("line") or []]
    for key in ("city", "district", "postalCode"):
        if address.get(key):
            parts.append(str(address[key]))
    return ", ".join(parts) or None


def effective_date(resource: Resource) -> str | None:
    """The clinically relevant date of a resource (ISO string as recorded, possibly with time)."""
    for key in (
        "effectiveDateTime",
        "onsetDateTime",
        "authoredOn",
        "recordedDate",
        "issued",
        "date",
        "occurrenceDateTime",
    ):
        if resource.get(key):
            return str(resource[key])
    for key in ("effectivePeriod", "period", "onsetPeriod"):
        period = resource.get(key) or {}
        if period.get("start"):
            return str(period["start"])
    if resource.get("onsetString"):
        return str(resource["onsetString"])
    return None


def date_only(value: str | None) -> str | None:
    return value[:10] if value else None


def references_patient(resource: Resource, patient_id: str) -> bool:
    """Whether a resource belongs to the patient (subject/patient reference, or is the Patient)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    for key in ("subject", "patient"):
        ref = (resource.get(key) or {}).get("reference") or ""
        if ref == f"Patient/{patient_id}" or ref.endswith(f"/Patient/{patient_id}"):
            return True
    return False


def attachment_text(attachment: dict[str, Any]) -> str | None:
    """Inline text of an Attachment (base64 `data` of a text/* type); None for binary/URL-only."""
    data = attachment.get("data")
    content_type = (attachment.get("contentType") or "text/plain").lower()
    if not data or not (content_type.startswith("text/") or "json" in content_type):
        return None
    try:
        return base64.b64decode(data, validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
