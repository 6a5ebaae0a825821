"""Write a signed letter back to the FHIR store: an Encounter for the consultation (when there is
none yet), a DocumentReference carrying the PDF (sha1 hash, size, author, status current) and a
Composition with the letter's sections, both linked to the patient and the encounter.

Resources are validated with fhir.resources (R4B models, which match R4 for these types) before
they are sent, so a bad resource fails here with a clear message instead of half-written.

The PDF is read decrypted (in memory) when it is kept sealed: the record receives the PDF itself,
and its attachment's size and SHA-1 are the PDF's, not the sealed file's.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from pydantic import ValidationError

from clarke_desktop.config import ClinicianSettings
from clarke_desktop.fhir.client import FhirClient, FhirInvalid
from clarke_desktop.identity import sealed
from clarke_desktop.schemas import ClinicalDocument, utc_now_iso

LOINC = "http://loinc.org"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
CONSULTATION_SYSTEM = "urn:clarke-desktop:consultation"

# LOINC document type per letter type.
DOC_TYPE_CODES: dict[str, tuple[str, str]] = {
    "clinic": ("11488-4", "Consult note"),
    "soap": ("11506-3", "Progress note"),
    "referral": ("57133-1", "Referral note"),
    "patient": ("34133-9", "Summary of episode note"),
}


@dataclass(frozen=True)
class WriteBackResult:
    encounter: str  # "Encounter/id"
    document_reference: str
    composition: str


@dataclass(frozen=True)
class SignedLetter:
    """A signed letter version as the record shows it: what its DocumentReference and its
    Composition both say about the letter, its patient, encounter, signer and time."""

    document: ClinicalDocument
    version: int
    patient_id: str
    signed_by: str
    signed_at: str
    clinician: ClinicianSettings
    encounter_ref: str | None = None  # None: write-back opens an Encounter for the consultation
    consultation_started: str | None = None  # the Encounter's start (default: the signing time)

    @property
    def identifier(self) -> dict[str, Any]:
        return {"system": CONSULTATION_SYSTEM, "value": f"{self.document.consultation_id}/v{self.version}"}

    @property
    def doc_type(self) -> dict[str, Any]:
        code, display = DOC_TYPE_CODES.get(self.document.doc_type, DOC_TYPE_CODES["clinic"])
        return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}

    @property
    def author(self) -> dict[str, Any]:
        """The signer; identified by GMC number when it is the configured clinician."""
        ref: dict[str, Any] = {"display": self.signed_by}
        if self.clinician.gmc_number and self.signed_by == self.clinician.name:
            ref["identifier"] = {"system": GMC_SYSTEM, "value": self.clinician.gmc_number}
        return ref

    @property
    def subject(self) -> dict[str, Any]:
        return {"reference": f"Patient/{self.patient_id}"}


def _validated(model: Any, resource: dict[str, Any]) -> dict[str, Any]:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise FhirInvalid(f"{resource['resourceType']} for write-back is not valid FHIR R4: {exc}") from exc
    return resource


def build_encounter(
    patient_id: str, consultation_id: str, *, start: str, end: str, clinician: str
) -> dict[str, Any]:
    resource = {
        "resourceType": "Encounter",
        "status": "finished",
        "identifier": [{"system": CONSULTATION_SYSTEM, "value": consultation_id}],
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [{"text": "Outpatient consultation"}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"individual": {"display": clinician}}],
        "period": {"start": start, "end": end},
    }
    return _validated(Encounter, resource)


def build_document_reference(
    letter: SignedLetter, pdf_path: Path, *, replaces: str | None = None
) -> dict[str, Any]:
    data = sealed.read_bytes(Path(pdf_path))
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "identifier": [letter.identifier],
        "type": letter.doc_type,
        "subject": letter.subject,
        "date": letter.signed_at,
        "author": [letter.author],
        "authenticator": letter.author,
        "description": f"{letter.doc_type['text']} for {letter.document.patient_name}",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "en-GB",
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                    # FHIR R4 Attachment.hash is the base64 of the SHA-1 digest.
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": Path(pdf_path).name,
                    "creation": letter.signed_at,
                }
            }
        ],
        "context": {"encounter": [{"reference": letter.encounter_ref}]},
    }
    if replaces:
        resource["relatesTo"] = [{"code": "appends", "target": {"reference": replaces}}]
    return _validated(DocumentReference, resource)


def _section_div(text: str) -> str:
    paras = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()] or [""]
    body = "".join(f"<p>{escape(p).replace(chr(10), '<br/>')}</p>" for p in paras)
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'


def build_composition(
    letter: SignedLetter, *, document_reference: str | None = None, replaces: str | None = None
) -> dict[str, Any]:
    document = letter.document
    sections: list[dict[str, Any]] = [
        {"title": s.heading, "text": {"status": "generated", "div": _section_div(s.content)}}
        for s in document.sections
    ]
    if document.medications_list:
        sections.append(
            {
                "title": "Current medications",
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "10160-0", "display": "History of Medication use Narrative"}
                    ]
                },
                "text": {"status": "generated", "div": _section_div("\n".join(document.medications_list))},
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Composition",
        "identifier": letter.identifier,
        "status": "final",
        "type": letter.doc_type,
        "subject": letter.subject,
        "encounter": {"reference": letter.encounter_ref},
        "date": letter.signed_at,
        "author": [letter.author],
        "title": f"{letter.doc_type['text']}: {document.patient_name}",
        "attester": [{"mode": "legal", "time": letter.signed_at, "party": letter.author}],
        "section": sections,
    }
    relates: list[dict[str, Any]] = []
    if document_reference:
        relates.append({"code": "transforms", "targetReference": {"reference": document_reference}})
    if replaces:
        relates.append({"code": "appends", "targetReference": {"reference": replaces}})
    if relates:
        resource["relatesTo"] = relates
    return _validated(Composition, resource)


def write_back(
    client: FhirClient, letter: SignedLetter, pdf_path: Path, *, replaces: str | None = None
) -> WriteBackResult:
    """Write encounter (if new), document reference and composition in ONE transaction Bundle.

    All or nothing: a failure part-way must not leave a letter without its composition (or an
    orphan encounter) in the record. References between the new resources use urn:uuid fullUrls,
    which the server rewrites to the ids it assigns.

    Idempotent: each resource is created only if none with its identifier exists (R4 conditional
    create, `ifNoneExist`), so a retry after a power cut that came between the server's commit
    and the app database's record of it finds the letter already there instead of filing it twice.
    """
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> str:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        method = {"method": "POST", "url": resource["resourceType"]}
        ident = resource.get("identifier")
        ident = ident[0] if isinstance(ident, list) and ident else ident
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            method["ifNoneExist"] = f"identifier={ident['system']}|{ident['value']}"
        entries.append({"fullUrl": full_url, "resource": resource, "request": method})
        return full_url

    encounter_ref = letter.encounter_ref
    if encounter_ref is None:
        encounter = build_encounter(
            letter.patient_id,
            letter.document.consultation_id,
            start=letter.consultation_started or letter.signed_at,
            end=letter.signed_at or utc_now_iso(),
            clinician=letter.signed_by,
        )
        encounter_ref = add(encounter)
        letter = dataclasses.replace(letter, encounter_ref=encounter_ref)
    doc_ref_url = add(build_document_reference(letter, pdf_path, replaces=replaces))
    add(build_composition(letter, document_reference=doc_ref_url))
    response = client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    locations = {}
    for sent, got in zip(entries, response.get("entry", []), strict=True):
        # "Type/id/_history/n" -> "Type/id"
        location = got["response"]["location"].split("/_history")[0]
        locations[sent["fullUrl"]] = location.split("/")[-2] + "/" + location.split("/")[-1]
    return WriteBackResult(
        locations.get(encounter_ref, encounter_ref),
        locations[doc_ref_url],
        locations[entries[-1]["fullUrl"]],
    )
