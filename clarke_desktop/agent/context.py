"""EHR context agent: the patient's record, assembled deterministically, plus model judgement.

Retrieval is plain code over the FhirClient interface, so every fact in a PatientContext is a
recorded value with its resource id and version. The EHR model (role "ehr_agent") only adds
`clinical_flags` and `summary`, which are judgement and never become record facts. A search that
fails leaves a `retrieval_warnings` entry and the rest of the context intact.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field

from clarke_desktop.agent import fhir_text as ft
from clarke_desktop.cancel import CancelToken
from clarke_desktop.fhir.client import FhirClient, FhirError, FhirNotFound, quarantined_for_patient
from clarke_desktop.llm.base import LlmEngine, LlmError, Turn
from clarke_desktop.record_lines import context_as_text
from clarke_desktop.schemas import (
    Allergy,
    Demographics,
    EncounterSummary,
    ImagingReport,
    LabResult,
    Medication,
    PatientContext,
    Problem,
    SourceRef,
)

log = logging.getLogger(__name__)

Resource = dict[str, Any]

LETTER_EXCERPT_CHARS = 2000  # demo letters are 1-1.6k characters: whole; longer ones marked as cut
_LAB_REPORT_CATEGORIES = {"lab", "laboratory"}
_INACTIVE_MED_STATUSES = {"stopped", "cancelled", "completed", "entered-in-error", "draft", "unknown"}
_INACTIVE_CONDITION_STATUSES = {"inactive", "resolved", "remission"}
_REFUTED = {"refuted", "entered-in-error"}


class PatientMissing(FhirNotFound):
    """The patient id is not in the record (the only retrieval failure that is an error)."""


# --- Deterministic retrieval ----------------------------------------------------------------


def retrieve_context(
    fhir: FhirClient, patient_id: str, *, today: date | None = None, cancel: CancelToken | None = None
) -> PatientContext:
    """Build the record part of a PatientContext. Raises PatientMissing only for an unknown id."""
    today = today or date.today()
    warnings: list[str] = []
    patient: Resource | None = None
    try:
        patient = fhir.read("Patient", patient_id)
    except FhirNotFound as exc:
        raise PatientMissing(f"Patient {patient_id} is not in the record.") from exc
    except FhirError as exc:
        warnings.append(f"Demographics unavailable: the record could not be read ({exc}).")

    demographics = (
        _demographics(fhir, patient, today, warnings) if patient else Demographics(name="", date_of_birth="")
    )

    def search(resource_type: str, label: str) -> list[Resource]:
        if cancel:
            cancel.raise_if_cancelled()
        try:
            found = fhir.search_all(resource_type, {"patient": patient_id})
        except FhirError as exc:
            warnings.append(f"{label} unavailable: the record could not be searched ({exc}).")
            return []
        return [r for r in found if r.get("resourceType") == resource_type]

    context = PatientContext(patient_id=patient_id, demographics=demographics)
    context.problem_list = _each(search("Condition", "Problem list"), _problem, warnings)
    context.medications = _each(
        search("MedicationRequest", "Medications"), lambda r, w: _medication(fhir, r, w), warnings
    )
    context.allergies = _each(search("AllergyIntolerance", "Allergies"), _allergy, warnings)
    observations = search("Observation", "Results")
    try:
        context.recent_labs = _labs([o for o in observations if not _is_vital_sign(o)], warnings)
        context.vital_signs = _labs([o for o in observations if _is_vital_sign(o)], warnings)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        warnings.append(f"Results could not be assembled ({exc}).")
    imaging = _each(search("DiagnosticReport", "Imaging"), _imaging_report, warnings)
    context.recent_imaging = sorted(imaging, key=lambda i: i.date or "", reverse=True)
    encounters = _each(search("Encounter", "Encounters"), _encounter, warnings)
    context.recent_encounters = sorted(encounters, key=lambda e: e.date or "", reverse=True)
    letter = _last_letter(search("DocumentReference", "Previous letters"))
    if letter:
        context.last_letter_excerpt, context.last_letter_source = letter
    context.not_loaded = quarantined_for_patient(fhir, patient_id)
    if context.not_loaded:
        warnings.insert(0, not_loaded_warning(context.not_loaded))
    context.retrieval_warnings = warnings
    return context


def not_loaded_warning(held: dict[str, int]) -> str:
    """'Part of this record could not be loaded: 1 diagnostic report, 2 encounters …'."""
    parts = []
    for resource_type, n in sorted(held.items()):
        words = re.sub(r"(?<!^)([A-Z])", r" \1", resource_type).lower()
        parts.append(f"{n} {words}{'' if n == 1 else 's'}")
    return (
        "Part of this record could not be loaded: " + ", ".join(parts) + ". They were held back as invalid "
        "when the record was imported (IT: local-fhir quarantine list); what is shown here is incomplete "
        "there, and a missing entry is not evidence of absence."
    )


def _each(
    resources: list[Resource], parse: Callable[[Resource, list[str]], Any], warnings: list[str]
) -> list[Any]:
    """Parse each resource; one that cannot be read is named in a warning, never dropped silently.

    `parse` returns None for a resource that is deliberately not current (stopped, resolved...).
    """
    items = []
    for resource in resources:
        try:
            item = parse(resource, warnings)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            warnings.append(
                f"{resource.get('resourceType')}/{resource.get('id')} could not be read and is not shown ({exc})."
            )
            continue
        if item is not None:
            items.append(item)
    return items


def _age(birth: str | None, today: date) -> int | None:
    if not birth or len(birth) < 10:
        return None
    try:
        born = date.fromisoformat(birth[:10])
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _nhs_number(patient: Resource) -> str | None:
    for identifier in patient.get("identifier") or []:
        if "nhs-number" in (identifier.get("system") or "") and identifier.get("value"):
            digits = "".join(ch for ch in str(identifier["value"]) if ch.isdigit())
            if len(digits) == 10:
                return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
            return str(identifier["value"])
    return None


def _demographics(fhir: FhirClient, patient: Resource, today: date, warnings: list[str]) -> Demographics:
    birth = patient.get("birthDate")
    demo = Demographics(
        name=ft.human_name(patient.get("name")) or "",
        date_of_birth=str(birth or ""),
        nhs_number=_nhs_number(patient),
        age=_age(birth, today),
        sex=(str(patient["gender"]).capitalize() if patient.get("gender") else None),
        address=ft.address_text(patient.get("address")),
        source=ft.source_of(patient),
    )
    for gp in patient.get("generalPractitioner") or []:
        reference = gp.get("reference") or ""
        display = gp.get("display")
        resource: Resource | None = None
        if "/" in reference:
            resource_type, _, gp_id = reference.rpartition("/")
            resource_type = resource_type.rsplit("/", 1)[-1]
            try:
                resource = fhir.read(resource_type, gp_id)
            except FhirError as exc:
                warnings.append(f"GP details unavailable ({reference}: {exc}).")
        if resource and resource.get("resourceType") == "Practitioner":
            demo.gp_name = demo.gp_name or ft.human_name(resource.get("name"))
        elif resource and resource.get("resourceType") == "Organization":
            demo.gp_practice = demo.gp_practice or resource.get("name")
            demo.gp_address = demo.gp_address or ft.address_text(resource.get("address"))
        elif resource and resource.get("resourceType") == "PractitionerRole":
            demo.gp_name = demo.gp_name or (resource.get("practitioner") or {}).get("display")
            demo.gp_practice = demo.gp_practice or (resource.get("organization") or {}).get("display")
        elif display:
            # "Dr. R. Patel, Riverside Medical Centre": a name, then the practice.
            name, _, practice = str(display).partition(",")
            if reference.startswith("Organization") or (not practice and not name.lower().startswith("dr")):
                demo.gp_practice = demo.gp_practice or name.strip()
            else:
                demo.gp_name = demo.gp_name or name.strip()
                if practice.strip():
                    demo.gp_practice = demo.gp_practice or practice.strip()
    return demo


def _problem(r: Resource, warnings: list[str]) -> Problem | None:
    status = ft.status_code(r.get("clinicalStatus"))
    if status in _INACTIVE_CONDITION_STATUSES or ft.status_code(r.get("verificationStatus")) in _REFUTED:
        return None
    name = ft.concept_text(r.get("code"))
    if not name:
        raise ValueError("no condition name")
    onset = ft.effective_date({k: v for k, v in r.items() if k.startswith("onset")})
    return Problem(
        name=name,
        onset=ft.date_only(onset),
        status=status,
        code=ft.concept_code(r.get("code")),
        source=ft.source_of(r),
    )


_FREQUENCY_WORDS = {1: "once", 2: "twice", 3: "three times", 4: "four times"}
_PERIOD_WORDS = {"d": "daily", "wk": "weekly", "mo": "monthly", "h": "hourly"}
_WHEN_WORDS = {"HS": "at night", "MORN": "in the morning", "EVE": "in the evening", "NIGHT": "at night",
               "AC": "before meals", "PC": "after meals", "C": "with meals", "WAKE": "on waking"}  # fmt: skip


def _frequency(dosage: dict[str, Any]) -> str | None:
    """Frequency in words from the structured timing (e.g. 'once daily at night', 'up to four
    times daily when required'), else the timing's coded text."""
    timing = dosage.get("timing") or {}
    text = ft.concept_text(timing.get("code"))
    repeat = timing.get("repeat") or {}
    if not text:
        frequency, period, unit = repeat.get("frequency"), repeat.get("period"), repeat.get("periodUnit")
        if frequency and unit:
            if (period in (None, 1)) and frequency in _FREQUENCY_WORDS and unit in _PERIOD_WORDS:
                text = f"{_FREQUENCY_WORDS[frequency]} {_PERIOD_WORDS[unit]}"
            else:
                text = f"{frequency} times every {ft.format_number(period or 1)} {unit}"
        whens = [_WHEN_WORDS.get(w, w) for w in repeat.get("when") or []]
        if text and whens:
            text = f"{text} {' and '.join(whens)}"
    if dosage.get("asNeededBoolean") or dosage.get("asNeededCodeableConcept"):
        if not text:
            text = "when required"
        elif "required" not in text and "needed" not in text:
            text = f"up to {text} when required"
    return text


def _dose(dosage: dict[str, Any]) -> str | None:
    for dose_and_rate in dosage.get("doseAndRate") or []:
        value, unit = ft.quantity_text(dose_and_rate.get("doseQuantity"))
        if value:
            return f"{value} {unit}" if unit else value
        dose_range = dose_and_rate.get("doseRange") or {}
        low, low_unit = ft.quantity_text(dose_range.get("low"))
        high, high_unit = ft.quantity_text(dose_range.get("high"))
        if low and high:
            return f"{low}-{high} {high_unit or low_unit or ''}".strip()
    return None


def _medication(fhir: FhirClient, r: Resource, warnings: list[str]) -> Medication | None:
    status = r.get("status")
    if status in _INACTIVE_MED_STATUSES:
        return None
    name = ft.concept_text(r.get("medicationCodeableConcept"))
    reference = r.get("medicationReference") or {}
    if not name and reference:
        name = reference.get("display")
        if not name and reference.get("reference"):
            try:
                medication = fhir.read("Medication", str(reference["reference"]).rsplit("/", 1)[-1])
                name = ft.concept_text(medication.get("code"))
            except FhirError as exc:
                raise ValueError(f"its Medication could not be read: {exc}") from exc
    if not name:
        raise ValueError("no medication name")
    dosage = (r.get("dosageInstruction") or [{}])[0]
    return Medication(
        name=name,
        dose=_dose(dosage),
        frequency=_frequency(dosage),
        route=ft.concept_text(dosage.get("route")),
        dosage_text=dosage.get("text"),
        status=status,
        source=ft.source_of(r),
    )


def _allergy(r: Resource, warnings: list[str]) -> Allergy | None:
    if ft.status_code(r.get("clinicalStatus")) in {"inactive", "resolved"}:
        return None
    if ft.status_code(r.get("verificationStatus")) in _REFUTED:
        return None
    substance = ft.concept_text(r.get("code"))
    if not substance:
        raise ValueError("no substance")
    reactions = r.get("reaction") or []
    manifestations = [
        text
        for reaction in reactions
        for m in reaction.get("manifestation") or []
        if (text := ft.concept_text(m))
    ]
    return Allergy(
        substance=substance,
        reaction=", ".join(manifestations) or None,
        severity=next((x["severity"] for x in reactions if x.get("severity")), None),
        criticality=r.get("criticality"),
        source=ft.source_of(r),
    )


def observation_value(r: Resource) -> tuple[str | None, str | None]:
    if r.get("valueQuantity"):
        return ft.quantity_text(r["valueQuantity"])
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if r.get(key) is not None:
            return ft.format_number(r[key]) if key == "valueInteger" else str(r[key]), None
    if r.get("valueCodeableConcept"):
        return ft.concept_text(r["valueCodeableConcept"]), None
    components = r.get("component") or []
    values = [ft.quantity_text(c.get("valueQuantity")) for c in components]
    if values and all(v for v, _ in values):
        units = {u for _, u in values}
        return "/".join(v for v, _ in values if v), (units.pop() if len(units) == 1 else None)
    return None, None


def _reference_range(r: Resource) -> str | None:
    for rr in r.get("referenceRange") or []:
        if rr.get("text"):
            return str(rr["text"])
        low, _ = ft.quantity_text(rr.get("low"))
        high, unit = ft.quantity_text(rr.get("high"))
        if low and high:
            return f"{low}-{high}"
        if high:
            return f"<{high}" if not high.startswith("<") else high
        if low:
            return f">{low}" if not low.startswith(">") else low
    return None


def _as_decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.lstrip("<>=~"))
    except InvalidOperation:
        return None


def lab_trend(latest: str | None, previous: str | None) -> str | None:
    """rising/falling/stable comparing the first number of each value (systolic for BP).

    Any change is reported: judging whether it matters is the clinician's (and the flags') job.
    """
    new, old = _first_number(latest), _first_number(previous)
    if new is None or old is None:
        return None
    if new == old:
        return "stable"
    return "rising" if new > old else "falling"


def _first_number(value: str | None) -> Decimal | None:
    if value is None:
        return None
    return _as_decimal(value.split("/")[0])


def _is_vital_sign(r: Resource) -> bool:
    return any(
        c.get("code") == "vital-signs" for cat in r.get("category") or [] for c in cat.get("coding") or []
    )


def _labs(resources: list[Resource], warnings: list[str]) -> list[LabResult]:
    """Latest result per test (grouped by code), with the previous value and the trend."""
    groups: dict[str, list[Resource]] = {}
    for r in resources:
        if r.get("status") in {"entered-in-error", "cancelled"}:
            continue
        name = ft.concept_text(r.get("code"))
        if not name:
            warnings.append(f"Observation/{r.get('id')} has no test name and is not shown.")
            continue
        value, _ = observation_value(r)
        if value is None:
            warnings.append(f"Observation/{r.get('id')} ({name}) has no value and is not shown.")
            continue
        key = ft.concept_code(r.get("code")) or name.lower()
        groups.setdefault(key, []).append(r)
    labs: list[LabResult] = []
    for group in groups.values():
        group.sort(key=lambda o: ft.effective_date(o) or "", reverse=True)
        latest = group[0]
        value, unit = observation_value(latest)
        previous = group[1] if len(group) > 1 else None
        previous_value = observation_value(previous)[0] if previous else None
        labs.append(
            LabResult(
                name=ft.concept_text(latest.get("code")) or "",
                value=value or "",
                unit=unit,
                reference_range=_reference_range(latest),
                date=ft.date_only(ft.effective_date(latest)) or "",
                trend=lab_trend(value, previous_value) if previous else None,  # type: ignore[arg-type]
                previous_value=previous_value,
                previous_date=ft.date_only(ft.effective_date(previous)) if previous else None,
                code=ft.concept_code(latest.get("code")),
                source=ft.source_of(latest),
                previous_source=ft.source_of(previous) if previous else None,
            )
        )
    labs.sort(key=lambda lab: (lab.date, lab.name), reverse=True)
    return labs


def _imaging_report(r: Resource, warnings: list[str]) -> ImagingReport | None:
    categories = {
        (c.get("code") or "").lower() for cat in r.get("category") or [] for c in cat.get("coding") or []
    }
    categories |= {(cat.get("text") or "").lower() for cat in r.get("category") or []}
    if categories & _LAB_REPORT_CATEGORIES or r.get("status") == "entered-in-error":
        return None  # laboratory panels: their results are the Observations
    summary = r.get("conclusion") or ", ".join(
        t for c in r.get("conclusionCode") or [] if (t := ft.concept_text(c))
    )
    return ImagingReport(
        type=ft.concept_text(r.get("code")) or "Report",
        date=ft.date_only(ft.effective_date(r)),
        summary=summary or None,
        source=ft.source_of(r),
    )


def _encounter(r: Resource, warnings: list[str]) -> EncounterSummary | None:
    if r.get("status") in {"entered-in-error", "cancelled", "planned"}:
        return None
    types = [t for c in r.get("type") or [] if (t := ft.concept_text(c))]
    reasons = [t for c in r.get("reasonCode") or [] if (t := ft.concept_text(c))]
    return EncounterSummary(
        date=ft.date_only(ft.effective_date(r)),
        type=", ".join(types) or (r.get("class") or {}).get("display") or None,
        reason=", ".join(reasons) or None,
        source=ft.source_of(r),
    )


def _paragraphs(text: str) -> str:
    """The letter's own lines and paragraphs kept (an address, a blank line between paragraphs),
    spaces inside a line tidied: a run-on block is hard to read and to check."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _last_letter(resources: list[Resource]) -> tuple[str, SourceRef] | None:
    """The newest DocumentReference with inline text, as an excerpt marked as such."""
    dated = [
        (str(r.get("date") or ft.effective_date(r.get("context") or {}) or ""), r)
        for r in resources
        if r.get("status", "current") == "current"
    ]
    for _, r in sorted(dated, key=lambda pair: pair[0], reverse=True):
        for content in r.get("content") or []:
            text = ft.attachment_text(content.get("attachment") or {})
            if text and text.strip():
                text = _paragraphs(text)
                if len(text) > LETTER_EXCERPT_CHARS:
                    cut = max(
                        text.rfind(" ", 0, LETTER_EXCERPT_CHARS), text.rfind("\n", 0, LETTER_EXCERPT_CHARS)
                    )
                    text = text[: cut if cut > 0 else LETTER_EXCERPT_CHARS] + " [excerpt continues]"
                return text, ft.source_of(r)
    return None


# --- Text rendering for prompts -------------------------------------------------------------


# --- Model judgement ------------------------------------------------------------------------


class ContextJudgement(BaseModel):
    """What the EHR model may add: flags worth the clinician's attention and a short summary."""

    clinical_flags: list[str] = Field(default_factory=list, max_length=5)
    summary: str = Field(default="", max_length=600)


# Bumped whenever judgement_turns changes, so an audited context names the prompt that made it.
JUDGEMENT_PROMPT_VERSION = "context-judgement/1"
FLAGS_MAX_TOKENS = 256


def judgement_turns(context: PatientContext) -> list[Turn]:
    from clarke_desktop.llm.prompt import neutralise
    from clarke_desktop.templates import render_prompt

    return [Turn("user", render_prompt("ehr_flags.j2", record=neutralise(context_as_text(context))))]


def _usable(text: str) -> bool:
    words = text.split()
    return len(words) >= 2 and sum(ch.isalpha() for ch in text) >= 6


def add_model_judgement(
    context: PatientContext,
    engine: LlmEngine,
    *,
    max_tokens: int = FLAGS_MAX_TOKENS,
    cancel: CancelToken | None = None,
) -> PatientContext:
    """Ask the EHR model for flags and a summary; on failure or junk keep the context and warn."""
    result = context.model_copy(deep=True)
    result.judged_by, result.judgement_prompt_version = engine.info, JUDGEMENT_PROMPT_VERSION
    try:
        judgement = engine.generate_json(
            judgement_turns(context), ContextJudgement, max_tokens=max_tokens, retries=1, cancel=cancel
        )
    except LlmError as exc:
        result.model_warnings.append(
            f"Clinical flags and summary are unavailable: the EHR model failed ({exc})."
        )
        return result
    flags = [" ".join(f.split()) for f in judgement.clinical_flags if _usable(f)]
    summary = " ".join(judgement.summary.split())
    dropped = len(judgement.clinical_flags) - len(flags)
    if dropped:
        result.model_warnings.append(
            f"{dropped} unusable clinical flag(s) from the EHR model were discarded."
        )
    if summary and not _usable(summary):
        result.model_warnings.append("The EHR model's summary was unusable and was discarded.")
        summary = ""
    if not flags and not summary and not dropped:
        result.model_warnings.append("The EHR model returned no clinical flags and no summary.")
    result.clinical_flags = flags
    result.summary = summary or None
    return result


def build_context(
    fhir: FhirClient,
    patient_id: str,
    *,
    engine: LlmEngine | None = None,
    today: date | None = None,
    cancel: CancelToken | None = None,
    timings: dict[str, float] | None = None,
) -> PatientContext:
    """Record context (deterministic), then model flags when an EHR engine is given."""
    started = time.perf_counter()
    context = retrieve_context(fhir, patient_id, today=today, cancel=cancel)
    if timings is not None:
        timings["context_retrieval_s"] = round(time.perf_counter() - started, 4)
    if engine is not None:
        started = time.perf_counter()
        context = add_model_judgement(context, engine, cancel=cancel)
        if timings is not None:
            timings["model_flags_s"] = round(time.perf_counter() - started, 4)
    return context
