"""Compare a PatientContext with a gold fact list (tests/data/gold_facts, written from the dataset
generator, not from our code): each record fact becomes a tuple of its fields, so recall and
precision are set comparisons per section."""

from __future__ import annotations

from typing import Any

from clarke_desktop.schemas import PatientContext

SECTIONS = (
    "problem_list",
    "medications",
    "allergies",
    "recent_labs",
    "vital_signs",
    "recent_imaging",
    "recent_encounters",
)


def _digits(value: str | None) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


def _key(section: str, fact: dict[str, Any]) -> tuple:
    src = fact["source"]["id"]
    if section == "problem_list":
        return (src, fact["name"], fact["onset"], fact["status"], fact["code"])
    if section == "medications":
        # The gold dose may add a parenthetical from the prescriber's text ("400 micrograms (1-2 sprays)");
        # the structured dose is the part before it, and the full text is in dosage_text.
        dose = (fact["dose"] or "").split(" (")[0]
        return (
            src,
            fact["name"],
            dose,
            fact["frequency"],
            fact["route"],
            fact["dosage_text"],
            fact["status"],
        )
    if section == "allergies":
        return (src, fact["substance"], fact["reaction"], fact["severity"], fact["criticality"])
    if section in ("recent_labs", "vital_signs"):
        prev = (fact.get("previous_source") or {}).get("id")
        return (src, fact["name"], fact["code"], fact["value"], fact["unit"], fact["date"], fact["reference_range"],
                fact["previous_value"], fact["previous_date"], fact["trend"], prev)  # fmt: skip
    if section == "recent_imaging":
        return (src, fact["type"], fact["date"], fact["summary"])
    if section == "recent_encounters":
        return (src, fact["date"], fact["type"], fact["reason"])
    raise KeyError(section)


def context_facts(context: PatientContext) -> dict[str, list[tuple]]:
    dumped = context.model_dump()
    return {s: [_key(s, f) for f in dumped[s]] for s in SECTIONS}


def gold_facts(gold: dict[str, Any]) -> dict[str, list[tuple]]:
    return {s: [_key(s, f) for f in gold[s]] for s in SECTIONS}


def _same(section: str, ours: tuple, gold: tuple) -> bool:
    if ours == gold:
        return True
    if section == "medications" and ours[:3] == gold[:3] and ours[4:] == gold[4:]:
        # The record's timing may say more than the gold label: "once daily" prescribed with
        # timing.when=MORN reads "once daily in the morning" (the gold is not consistent here:
        # furosemide's label says "in the morning", omeprazole's does not).
        return ours[3].startswith(gold[3] + " ")
    return False


def compare(context: PatientContext, gold: dict[str, Any]) -> dict[str, Any]:
    """{'recall': r, 'precision': p, 'missing': [...], 'extra': [...], 'problems': [...]}"""
    ours, theirs = context_facts(context), gold_facts(gold)
    matched = {
        s: [(g, next((o for o in ours[s] if o[0] == g[0] and _same(s, o, g)), None)) for g in theirs[s]]
        for s in SECTIONS
    }
    missing = [(s, g) for s in SECTIONS for g, o in matched[s] if o is None]
    used = {(s, o) for s in SECTIONS for _, o in matched[s] if o is not None}
    extra = [(s, o) for s in SECTIONS for o in ours[s] if (s, o) not in used]
    total_gold = sum(len(v) for v in theirs.values())
    total_ours = sum(len(v) for v in ours.values())
    problems: list[str] = []
    d, g = context.demographics, gold["demographics"]
    for field in ("name", "date_of_birth", "gp_name", "gp_practice"):
        if getattr(d, field) != g[field]:
            problems.append(f"demographics.{field}: {getattr(d, field)!r} != {g[field]!r}")
    if _digits(d.nhs_number) != _digits(g["nhs_number"]):
        problems.append(f"nhs_number {d.nhs_number!r} != {g['nhs_number']!r}")
    if (d.sex or "").lower() != g["sex"].lower():
        problems.append(f"sex {d.sex!r} != {g['sex']!r}")
    if not d.source or d.source.id != g["source"]["id"] or not d.source.version_id:
        problems.append("demographics source/version missing")
    letter = gold.get("last_letter")
    if letter:
        if not context.last_letter_source or context.last_letter_source.id != letter["source"]["id"]:
            problems.append(f"last letter source {context.last_letter_source} != {letter['source']['id']}")
        for phrase in letter["must_mention"]:
            if phrase not in " ".join((context.last_letter_excerpt or "").split()):
                problems.append(f"last letter excerpt lacks {phrase!r}")
    shown = {f[0] for fs in ours.values() for f in fs} | {
        s.id for s in [context.last_letter_source, d.source] if s
    }
    for excluded in gold.get("excluded", []):
        if excluded["source"]["id"] in shown:
            problems.append(
                f"excluded resource presented as current: {excluded['source']['id']} ({excluded['why']})"
            )
    dumped = context.model_dump()
    for section in SECTIONS:
        for fact in dumped[section]:
            for key in ("source", "previous_source"):
                if fact.get(key) and not fact[key].get("version_id"):
                    problems.append(f"{section} {fact[key]['id']}: no version id")
    order = [f[1] or "" for f in ours["recent_encounters"]]
    if order != sorted(order, reverse=True):
        problems.append("encounters are not newest first")
    return {
        "recall": (total_gold - len(missing)) / total_gold if total_gold else 1.0,
        "precision": (total_ours - len(extra)) / total_ours if total_ours else 1.0,
        "missing": missing,
        "extra": extra,
        "problems": problems,
    }
