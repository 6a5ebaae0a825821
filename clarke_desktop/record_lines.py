"""The record as text: one line per medicine, allergy and result, and a whole PatientContext as the
plain lines a model prompt shows. Used by the EHR agent, the letter writer and the discrepancy
rules, so it sits below all three."""

from __future__ import annotations

from clarke_desktop.schemas import Allergy, LabResult, Medication, PatientContext

# The context keeps every report and encounter; prompts list the most recent ones and say how
# many earlier ones were left out (never a silent cut).
PROMPT_IMAGING = 5
PROMPT_ENCOUNTERS = 10


def context_as_text(context: PatientContext) -> str:
    """The record facts as plain lines (for model prompts; callers neutralise before use)."""
    d = context.demographics
    lines = [f"Patient: {d.name}, born {d.date_of_birth}" + (f", {d.age} years, {d.sex}" if d.age else "")]
    if context.problem_list:
        lines.append("Problem list:")
        lines += [f"- {p.name}" + (f" (since {p.onset})" if p.onset else "") for p in context.problem_list]
    lines.append("Current medications:" if context.medications else "Current medications: none recorded")
    lines += [f"- {medication_line(m)}" for m in context.medications]
    lines.append("Allergies:" if context.allergies else "Allergies: none recorded")
    lines += [f"- {allergy_line(a)}" for a in context.allergies]
    if context.recent_labs:
        lines.append("Recent results:")
        lines += [f"- {lab_line(lab)}" for lab in context.recent_labs]
    if context.vital_signs:
        lines.append("Vital signs:")
        lines += [f"- {lab_line(v)}" for v in context.vital_signs]
    if context.recent_imaging:
        lines.append("Imaging and reports:")
        lines += [
            f"- {i.type} ({i.date or 'undated'}): {i.summary or 'no conclusion recorded'}"
            for i in context.recent_imaging[:PROMPT_IMAGING]
        ]
        if len(context.recent_imaging) > PROMPT_IMAGING:
            lines.append(
                f"- ({len(context.recent_imaging) - PROMPT_IMAGING} earlier reports not listed here)"
            )
    if context.recent_encounters:
        lines.append("Recent encounters:")
        lines += [
            f"- {e.date or 'undated'}: {e.type or 'encounter'}" + (f" ({e.reason})" if e.reason else "")
            for e in context.recent_encounters[:PROMPT_ENCOUNTERS]
        ]
        if len(context.recent_encounters) > PROMPT_ENCOUNTERS:
            lines.append(
                f"- ({len(context.recent_encounters) - PROMPT_ENCOUNTERS} earlier encounters not listed here)"
            )
    if context.last_letter_excerpt:
        lines.append(f"Last letter (excerpt): {context.last_letter_excerpt}")
    return "\n".join(lines)


def medication_line(m: Medication) -> str:
    parts = [m.name]
    if m.dose:
        parts.append(m.dose)
    if m.frequency:
        parts.append(m.frequency)
    if m.route:
        parts.append(f"({m.route})")
    line = " ".join(parts)
    if m.dosage_text and not (m.dose or m.frequency):
        line += f": {m.dosage_text}"
    return line


def allergy_line(a: Allergy) -> str:
    details = ", ".join(x for x in (a.reaction, a.severity and f"severity {a.severity}") if x)
    return f"{a.substance}" + (f" ({details})" if details else "")


def lab_line(lab: LabResult) -> str:
    line = f"{lab.name} {lab.value}" + (f" {lab.unit}" if lab.unit else "") + f" on {lab.date}"
    if lab.previous_value:
        line += f" (previous {lab.previous_value} on {lab.previous_date}"
        line += f", {lab.trend})" if lab.trend else ")"
    if lab.reference_range:
        line += f"; reference range {lab.reference_range}"
    return line
