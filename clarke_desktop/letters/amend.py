"""A discrepancy's resolution applied to the letter's text, and undone.

"Use the record's value" and "use what was said" replace the value the letter gives for the
discrepancy's subject (a drug's dose or frequency, a test's result, an allergy's reaction) wherever
the letter states it; "keep both" writes one agreed sentence naming both after the sentence that
mentions the subject. Every change is returned as a `LetterEdit`, so it can be shown, highlighted
and undone; nothing is changed where the letter does not state the value (the caller says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clarke_desktop.clinical_text.reader import Reading, read
from clarke_desktop.errors import ClarkeError
from clarke_desktop.schemas import (
    ClinicalDocument,
    Discrepancy,
    DocumentSection,
    LetterEdit,
    ResolutionAction,
)

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


class AmendError(ClarkeError):
    """The letter cannot be changed as asked (it was edited at that place since)."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where the letter speaks of a discrepancy's subject: its value when it gives one."""

    section_key: str
    heading: str
    start: int
    end: int
    text: str  # the letter's words there
    is_value: bool  # the value itself (a dose, a result), not just the name


def locate(document: ClinicalDocument, d: Discrepancy) -> Place | None:
    """The first place the letter gives the subject's value, else where it names the subject."""
    places = _places(document, d)
    values = [p for p in places if p.is_value]
    return next(iter(values or places), None)


def apply(
    document: ClinicalDocument, d: Discrepancy, action: ResolutionAction
) -> tuple[ClinicalDocument, list[LetterEdit]]:
    """`document` changed for `action`, with the edits made (none: the text already says it, or
    does not state the value at all)."""
    if action in ("use_record", "use_said"):
        wanted = d.record_value if action == "use_record" else d.said_value
        if not wanted:
            return document, []
        return _use_value(document, d, wanted)
    if action == "keep_both":
        return _keep_both(document, d)
    return document, []


def undo(document: ClinicalDocument, edits: list[LetterEdit]) -> ClinicalDocument:
    """`document` with `edits` reversed, latest first. Refused when the clinician has since
    changed the text an edit wrote (their later words are never overwritten)."""
    document = document.model_copy(deep=True)
    for edit in reversed(edits):
        section = _section(document, edit.section_key)
        text = section.content
        at = edit.start
        if text[at : at + len(edit.after)] != edit.after:
            found = [m.start() for m in re.finditer(re.escape(edit.after), text)] if edit.after else []
            if len(found) != 1:
                raise AmendError(
                    f"“{section.heading}” was edited after this was resolved, so the change cannot be "
                    "undone automatically: edit the section by hand."
                )
            at = found[0]
        section.content = text[:at] + edit.before + text[at + len(edit.after) :]
    return document


# --- finding -----------------------------------------------------------------------------------


def _editable(document: ClinicalDocument) -> list[DocumentSection]:
    return [s for s in document.sections if s.editable and s.kind == "narrative"]


def _section(document: ClinicalDocument, key: str) -> DocumentSection:
    for s in document.sections:
        if s.key == key:
            return s
    raise AmendError(f"The letter has no section “{key}” any more.")


def _places(document: ClinicalDocument, d: Discrepancy) -> list[Place]:
    if not d.subject:
        return []
    out: list[Place] = []
    for section in _editable(document):
        if not section.content.strip():
            continue
        reading = read(section.content)
        out.extend(_in_section(section, reading, d))
    return out


def _in_section(section: DocumentSection, reading: Reading, d: Discrepancy) -> list[Place]:
    subject = (d.subject or "").lower()

    def place(ti: int, tj: int, is_value: bool) -> Place:
        start, end = reading.span(ti, tj)
        return Place(section.key, section.heading, start, end, section.content[start:end], is_value)

    values: list[Place] = []
    names: list[Place] = []
    for drug in reading.drugs:
        if drug.canonical.lower() != subject:
            continue
        names.append(place(drug.ti, drug.tj, False))
        if d.kind == "dose":
            values += [place(q.ti, q.tj, True) for q in drug.doses if q.is_dose]
        elif d.kind == "frequency":
            values += [place(f.ti, f.tj, True) for f in drug.frequencies]
    for test in reading.tests:
        if test.test.lower() != subject:
            continue
        names.append(place(test.ti, test.tj, False))
        if d.kind == "lab_value":
            values += [place(q.ti, q.tj, True) for q in test.values]
    if d.kind == "allergy" and names and (d.said_value or d.record_value):
        values += _words_near(section, names, [v for v in (d.said_value, d.record_value) if v])
    if not names:  # a subject the reader does not know as a drug or test: its words
        for m in re.finditer(rf"\b{re.escape(subject)}\b", section.content, re.IGNORECASE):
            names.append(Place(section.key, section.heading, m.start(), m.end(), m.group(0), False))
    return values + names


def _words_near(section: DocumentSection, names: list[Place], words: list[str]) -> list[Place]:
    """A reaction ("rash", "anaphylaxis") in the sentence that names the allergen."""
    out = []
    for name in names:
        end = _sentence_end(section.content, name.end)
        for word in words:
            # An article goes with the word it is replaced with: "a rash" -> "anaphylaxis".
            pattern = rf"\b(?:an? )?{re.escape(word)}\b"
            for m in re.finditer(pattern, section.content[name.start : end], re.IGNORECASE):
                start = name.start + m.start()
                out.append(
                    Place(section.key, section.heading, start, start + len(m.group(0)), m.group(0), True)
                )
    return out


def _sentence_end(text: str, at: int) -> int:
    m = _SENTENCE_END.search(text, at)
    return m.end() if m else len(text)


# --- changing ----------------------------------------------------------------------------------


def _same(letter_text: str, value: str, d: Discrepancy) -> bool:
    """Whether the letter's words there already state `value`."""
    if re.sub(r"^an? ", "", letter_text.strip().lower()) == value.strip().lower():
        return True
    if d.kind in ("dose", "lab_value"):
        ours = read(f"x {letter_text}").quantities
        theirs = read(f"x {value}").quantities
        if ours and theirs:
            a, b = ours[0], theirs[0]
            return a.value == b.value and (a.unit == b.unit or a.unit is None or b.unit is None)
    if d.kind == "frequency":
        ours_f = read(f"take it {letter_text}").frequencies
        theirs_f = read(f"take it {value}").frequencies
        if ours_f and theirs_f:
            return ours_f[0].same_as(theirs_f[0]) and theirs_f[0].same_as(ours_f[0])
    return False


def _use_value(
    document: ClinicalDocument, d: Discrepancy, wanted: str
) -> tuple[ClinicalDocument, list[LetterEdit]]:
    values = [p for p in _places(document, d) if p.is_value]
    stale = [p for p in values if not _same(p.text, wanted, d)]
    if not stale:
        return document, []
    document = document.model_copy(deep=True)
    edits: list[LetterEdit] = []
    shift: dict[str, int] = {}  # how far earlier replacements moved this section's text
    # Left to right, each edit's start in the text as it stands after it, so undoing them latest
    # first finds every one where it was written.
    for p in sorted(stale, key=lambda p: (p.section_key, p.start)):
        section = _section(document, p.section_key)
        at = p.start + shift.get(p.section_key, 0)
        section.content = section.content[:at] + wanted + section.content[at + len(p.text) :]
        shift[p.section_key] = shift.get(p.section_key, 0) + len(wanted) - len(p.text)
        edits.append(LetterEdit(section_key=p.section_key, start=at, before=p.text, after=wanted))
    return document, edits


def agreed_wording(d: Discrepancy) -> str:
    """The sentence "keep both" writes: both sources, named as such."""
    name = (d.subject or "").strip()
    name = name[:1].upper() + name[1:]
    said, recorded = d.said_value, d.record_value
    if d.kind == "dose" and said and recorded:
        return f"{name}: the patient reports taking {said}; the record gives a dose of {recorded}."
    if d.kind == "frequency" and said and recorded:
        return f"{name}: the patient reports taking it {said}; the record says {recorded}."
    if d.kind == "lab_value" and said:
        return f"{name}: {said} was quoted in clinic; the record has {d.record_text or recorded}."
    if d.kind == "allergy" and said and recorded:
        return f"{name} allergy: the reaction was described today as {said}; the record has {recorded}."
    text = d.description.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _keep_both(document: ClinicalDocument, d: Discrepancy) -> tuple[ClinicalDocument, list[LetterEdit]]:
    sentence = agreed_wording(d)
    if any(sentence in s.content for s in document.sections):
        return document, []  # already written (kept both before, undone and redone)
    document = document.model_copy(deep=True)
    where = locate(document, d)
    if where is not None:
        section = _section(document, where.section_key)
        at = _sentence_end(section.content, where.end)
        after = f" {sentence}"
    else:
        section = _fallback_section(document)
        at = len(section.content.rstrip())
        after = f" {sentence}" if section.content.strip() else sentence
    section.content = section.content[:at] + after + section.content[at:]
    return document, [LetterEdit(section_key=section.key, start=at, before="", after=after)]


def _fallback_section(document: ClinicalDocument) -> DocumentSection:
    """Where a note on the medicines or the record belongs when the letter does not name the subject:
    the plan, else the last narrative section; one with text first (a section left empty stays for
    the clinician to write, and is not filled by this sentence alone)."""
    sections = _editable(document)
    if not sections:
        raise AmendError("The letter has no editable section to write this in.")
    written = [s for s in sections if s.content.strip()] or sections
    plans = [s for s in written if "plan" in s.key.lower() or "plan" in s.heading.lower()]
    return (plans or written[-1:])[0]
