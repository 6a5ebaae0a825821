"""letters.amend: a resolution's value written where the letter gives it, bound to its subject
(another drug's dose is never touched), and undone exactly."""

from __future__ import annotations

import pytest

from clarke_desktop.letters.amend import AmendError, agreed_wording, apply, locate, undo
from clarke_desktop.schemas import ClinicalDocument, Discrepancy, DocumentSection, TranscriptSpan


def _doc(*sections: tuple[str, str, str]) -> ClinicalDocument:
    return ClinicalDocument(
        consultation_id="c1", letter_date="2026-12-07", patient_name="Mrs A", patient_dob="1950-01-01",
        sections=[DocumentSection(key=k, heading=h, content=c) for k, h, c in sections],
    )  # fmt: skip


def _d(kind: str, subject: str, said: str | None, recorded: str | None, description: str = "") -> Discrepancy:
    return Discrepancy(
        id=f"{kind}-1", kind=kind, subject=subject, description=description or f"{subject} differs",
        transcript=TranscriptSpan(text="..."), said_value=said, record_value=recorded,
    )  # fmt: skip


def test_every_place_the_dose_is_given_changes_and_no_other_drugs() -> None:
    doc = _doc(
        ("history", "History", "Takes ramipril 10 mg once daily and amlodipine 10 mg. Ramipril 10 milligrams suits her."),
        ("plan", "Plan", "Continue ramipril 10mg."),
    )  # fmt: skip
    new, edits = apply(doc, _d("dose", "ramipril", "10 mg", "2.5 mg"), "use_record")
    assert (
        new.sections[0].content
        == "Takes ramipril 2.5 mg once daily and amlodipine 10 mg. Ramipril 2.5 mg suits her."
    )
    assert new.sections[1].content == "Continue ramipril 2.5 mg."
    assert len(edits) == 3
    assert undo(new, edits) == doc  # exactly back, offsets and all


def test_frequency_and_result_values() -> None:
    doc = _doc(("history", "History", "Metformin 1 g once a day. HbA1c was 52 last month."))
    freq, _ = apply(doc, _d("frequency", "metformin", "once a day", "twice daily"), "use_record")
    assert freq.sections[0].content == "Metformin 1 g twice daily. HbA1c was 52 last month."
    lab, _ = apply(doc, _d("lab_value", "HbA1c", "52", "55 mmol/mol"), "use_record")
    assert lab.sections[0].content == "Metformin 1 g once a day. HbA1c was 55 mmol/mol last month."


def test_a_value_the_letter_already_gives_or_does_not_give_is_not_touched() -> None:
    doc = _doc(("history", "History", "Takes ramipril 5 mg."), ("plan", "Plan", "Review in clinic."))
    same, edits = apply(doc, _d("dose", "ramipril", "10 mg", "5 mg"), "use_record")
    assert same == doc and edits == []
    absent, edits = apply(doc, _d("dose", "bisoprolol", "10 mg", "5 mg"), "use_said")
    assert absent == doc and edits == []


def test_an_allergy_reaction_is_chosen_in_the_sentence_naming_the_allergen() -> None:
    doc = _doc(
        (
            "history",
            "History",
            "She is allergic to penicillin, which gave her a rash. A rash on her arm settled.",
        )
    )
    d = _d("allergy", "Penicillins", "rash", "anaphylaxis")  # the reader names the class
    new, edits = apply(doc, d, "use_record")
    assert new.sections[0].content == (
        "She is allergic to penicillin, which gave her anaphylaxis. A rash on her arm settled."
    )
    assert len(edits) == 1


def test_keep_both_goes_after_the_mention_or_into_the_written_plan() -> None:
    d = _d("dose", "ramipril", "10 mg", "5 mg")
    doc = _doc(("history", "History", "Takes ramipril 10 mg. Feels well."), ("plan", "Plan", "Review."))
    new, _ = apply(doc, d, "keep_both")
    assert new.sections[0].content == f"Takes ramipril 10 mg. {agreed_wording(d)} Feels well."
    # not named anywhere: into the plan; an empty plan is left for the clinician to write
    doc = _doc(("history", "History", "Feels well."), ("plan", "Plan", ""), ("summary", "Summary", "Stable."))
    new, edits = apply(doc, d, "keep_both")
    assert new.sections[1].content == "" and new.sections[2].content == f"Stable. {agreed_wording(d)}"
    assert undo(new, edits) == doc


def test_locate_prefers_the_value_and_says_where() -> None:
    doc = _doc(
        ("history", "History", "Ramipril was discussed."), ("plan", "Plan", "Continue ramipril 10 mg.")
    )
    where = locate(doc, _d("dose", "ramipril", "10 mg", "5 mg"))
    assert where is not None and (where.section_key, where.text, where.is_value) == ("plan", "10 mg", True)
    assert locate(doc, _d("diagnosis", "asthma", None, None)) is None


def test_undo_refuses_when_the_words_were_changed_since() -> None:
    doc = _doc(("history", "History", "Takes ramipril 10 mg."))
    new, edits = apply(doc, _d("dose", "ramipril", "10 mg", "5 mg"), "use_record")
    new.sections[0].content = "Ramipril stopped."
    with pytest.raises(AmendError, match="edit the section by hand"):
        undo(new, edits)
