"""Facts sections, rendered in code from the PatientContext: record values exactly, no model.

Each line carries one record fact; the section's `fhir_sources` lists the resources it came from.
When a search failed, the section says the record could not be read instead of "none recorded".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from clarke_desktop.record_lines import allergy_line, medication_line
from clarke_desktop.schemas import Allergy, LabResult, Medication, PatientContext, Problem
from clarke_desktop.uk_format import record_date, unit_display

_Fact = TypeVar("_Fact", Medication, Allergy, Problem)


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


def _listed(
    context: PatientContext,
    items: Sequence[_Fact],
    line: Callable[[_Fact], str],
    *,
    label: str,
    record: str,
    none: str,
) -> tuple[str, list[str]]:
    """One line per item of a record list. `label` names the list in the retrieval warnings;
    `record` says what could not be read when its search failed; `none` is said for an empty list."""
    if _unavailable(context, label):
        return f"The {record} could not be retrieved; check the record directly.", []
    if not items:
        return none, []
    return "\n".join(line(item) for item in items), [item.source.reference for item in items]


def medications(context: PatientContext) -> tuple[str, list[str]]:
    return _listed(context, context.medications, medication_line, label="Medications",
                   record="medication record", none="No current medications recorded.")  # fmt: skip


def allergies(context: PatientContext) -> tuple[str, list[str]]:
    return _listed(context, context.allergies, allergy_line, label="Allergies",
                   record="allergy record", none="No allergies recorded.")  # fmt: skip


def _problem_line(problem: Problem) -> str:
    return problem.name + (f" (since {record_date(problem.onset)})" if problem.onset else "")


def problems(context: PatientContext) -> tuple[str, list[str]]:
    return _listed(context, context.problem_list, _problem_line, label="Problem list",
                   record="problem list", none="No active problems recorded.")  # fmt: skip


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
