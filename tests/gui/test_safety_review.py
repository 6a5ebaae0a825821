"""The review screen shows the clause-bound fact check where the facts are: the facts bound to the
one under the cursor (a drug, its dose and frequency) are emphasised together."""

from __future__ import annotations

import pytest

from clarke_desktop.letters.fact_check import fact_check
from clarke_desktop.schemas import ClinicalDocument, Demographics, DocumentSection, PatientContext

pytestmark = pytest.mark.gui

SAID = "Patient: lisinopril ten milligrams once a day, and amlodipine 5 mg at night."
LETTER = "Lisinopril 600 mg every 6 hours. Amlodipine 5 mg at night."


def _facts():
    doc = ClinicalDocument(
        consultation_id="c", letter_date="2026-12-07", patient_name="", patient_dob="",
        sections=[DocumentSection(key="plan", heading="Plan", content=LETTER)],
    )  # fmt: skip
    return fact_check(
        doc, SAID, PatientContext(patient_id="p", demographics=Demographics(name="", date_of_birth=""))
    )


def test_bound_facts_are_emphasised_together_and_unsupported_ones_say_why(styled_app, qtbot) -> None:
    from clarke_desktop.gui.screens.review import SectionCard, evidence_text

    card = SectionCard("plan", "Plan")
    qtbot.addWidget(card)
    card.set_text(LETTER)
    facts = _facts()
    card.set_facts(facts)
    assert len(card.editor.extraSelections()) == len(facts) == 6

    cursor = card.editor.textCursor()
    cursor.setPosition(LETTER.index("600") + 1)
    card.editor.setTextCursor(cursor)
    bold = {
        sel.cursor.selectedText() for sel in card.editor.extraSelections() if sel.format.fontWeight() == 700
    }
    assert bold == {"Lisinopril", "600 mg", "every 6 hours"}

    lisinopril = next(f for f in facts if f.text == "Lisinopril")
    assert not lisinopril.supported and lisinopril.evidence  # said, but not with this dose
    assert "found, but not with this dose or frequency" in evidence_text(lisinopril)
    amlodipine = next(f for f in facts if f.text == "Amlodipine")
    assert amlodipine.supported and amlodipine.group != lisinopril.group
