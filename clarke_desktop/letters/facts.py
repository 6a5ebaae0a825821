"""Facts sections, rendered in code from the PatientContext: record values exactly, no model.

Each line carries one record fact; the section's `fhir_sources` lists the resources it came from.
When a search failed, the section says the record could not be read instead of "none recorded".
"""

from __future__ import annotations

from collections.abc import Callable

from clarke_desktop.record_lines import allergy_line, medication_line
from clarke_desktop.schemas import LabResult, PatientContext
from clarke_desktop.uk_format import record_date, unit_display


def _unavailable(context: PatientContext, label: str) -> bool:
    return any(w.startswith(f"{label} unavailable") for w in context.retrieval_warnings)


def lab_fact_line(lab: LabResult) -> str:
    shown = unit_display(lab.unit)
    unit = f" {shown}" if shown else ""
    line = f"{lab.name}: {lab.value}{unit} ({record_date(lab.date)})"
    if lab.previous_value is not None:
        line += f"; previously {lab.previous_value}{unit} ({record_date(lab.previous_date)})"
        if lab.trend:
            line += f", {lab.trend}"
    if lab.reference_range:
        line += f". Reference range {lab.reference_range}"
    return line + "."


def investigations(context: PatientContext) -> tuple[str, list[str]]:
    lines: list[str] = []
    sources: list[str] = []
    for lab in [*context.recent_labs, *context.vital_signs]:
        lines.append(lab_fact_line(lab))
        sources.append(lab.source.reference)
        if lab.previous_source:
            sources.append(lab.previous_source.reference)
    for report in context.recent_imaging:
        summary = (report.summary or "no conclusion recorded").rstrip()
        ending = "" if summary.endswith((".", "!", "?")) else "."  # a recorded conclusion keeps its own stop
        lines.append(f"{report.type} ({record_date(report.date)}): {summary}{ending}")
        sources.append(report.source.reference)
    if _unavailable(context, "Results") or _unavailable(context, "Imaging"):
        lines.append("Some results could not be retrieved from the record; check the record directly.")
    if not lines:
        lines.append("No results on record.")
    return "\n".join(lines), sources


def medications(context: PatientContext) -> tuple[str, list[str]]:
    if _unavailable(context, "Medications"):
        return "The medication record could not be retrieved; check the record directly.", []
    if not context.medications:
        return "No current medications recorded.", []
    return (
        "\n".join(f"{medication_line(m)}" for m in context.medications),
        [m.source.reference for m in context.medications],
    )


def allergies(context: PatientContext) -> tuple[str, list[str]]:
    if _unavailable(context, "Allergies"):
        return "The allergy record could not be retrieved; check the record directly.", []
    if not context.allergies:
        return "No allergies recorded.", []
    return (
        "\n".join(allergy_line(a) for a in context.allergies),
        [a.source.reference for a in context.allergies],
    )


def problems(context: PatientContext) -> tuple[str, list[str]]:
    if _unavailable(context, "Problem list"):
        return "The problem list could not be retrieved; check the record directly.", []
    if not context.problem_list:
        return "No active problems recorded.", []
    return (
        "\n".join(p.name + (f" (since {record_date(p.onset)})" if p.onset else "") for p in context.problem_list),
        [p.source.reference for p in context.problem_list],
    )


RENDERERS: dict[str, Callable[[PatientContext], tuple[str, list[str]]]] = {
    "investigations": investigations,
    "medications": medications,
    "allergies": allergies,
    "problems": problems,
}


def render_facts(renderer: str, context: PatientContext) -> tuple[str, list[str]]:
    try:
        build = RENDERERS[renderer]
    except KeyError as exc:
        raise KeyError(f"No facts renderer {renderer!r} (templates/documents.json).") from exc
    return build(context)
