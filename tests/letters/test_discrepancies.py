"""Discrepancies between constructed consultations and the demo patients' real records."""

from __future__ import annotations

import pytest

from clarke_desktop.agent.context import retrieve_context
from clarke_desktop.letters.discrepancies import detect_discrepancies
from clarke_desktop.schemas import Transcript, Word


@pytest.fixture
def thompson(fhir):
    return retrieve_context(fhir, "pt-001")


def kinds(items) -> list[str]:
    return [d.kind for d in items]


def test_dose_said_differs_from_prescription(thompson) -> None:
    found = detect_discrepancies(
        "You're still taking the metformin 500 mg twice a day, is that right?", thompson
    )
    assert kinds(found) == ["dose"]
    d = found[0]
    assert "500 mg" in d.description and "1 g" in d.description
    assert (
        d.record_source and d.record_source.id == "med-pt-001-metformin" and d.record_source.version_id == "1"
    )
    assert d.transcript.text == "metformin 500 mg"
    assert d.severity == "high"


def test_spoken_numbers_and_units_are_understood(thompson) -> None:
    assert detect_discrepancies("and metformin one gram twice daily with meals", thompson) == []
    found = detect_discrepancies("ramipril ten milligrams once a day", thompson)
    assert kinds(found) == ["dose"] and "ten milligrams" in found[0].description


def test_frequency_said_differs(thompson) -> None:
    found = detect_discrepancies("I take my ramipril 5 mg twice a day.", thompson)
    assert kinds(found) == ["frequency"] and "twice a day" in found[0].description
    assert found[0].subject == "ramipril"


def test_planned_changes_are_not_discrepancies(thompson) -> None:
    text = "We'll increase the ramipril to 10 mg once daily and start gliclazide 40 mg."
    assert detect_discrepancies(text, thompson) == []


def test_allergy_mentioned_but_not_recorded(thompson) -> None:
    found = detect_discrepancies("Oh and I'm allergic to latex, it gives me a rash.", thompson)
    assert kinds(found) == ["allergy"] and "latex" in found[0].description
    assert "Penicillin" in (found[0].record_text or "")


def test_recorded_allergy_mentioned_is_consistent(thompson) -> None:
    assert detect_discrepancies("You're allergic to penicillin, I see.", thompson) == []
    assert detect_discrepancies("I am allergic to amoxicillin.", thompson) == []  # a penicillin


def test_allergies_denied_but_recorded(thompson) -> None:
    found = detect_discrepancies("Any allergies? No known allergies.", thompson)
    assert kinds(found) == ["allergy"] and found[0].record_source.id == "allergy-pt-001-penicillin"
    found = detect_discrepancies("I'm not allergic to penicillin actually.", thompson)
    assert kinds(found) == ["allergy"] and found[0].severity == "high"


def test_recorded_nkda_agrees_with_a_denial(fhir) -> None:
    okafor = retrieve_context(fhir, "pt-002")
    assert okafor.allergies[0].substance == "No known drug allergy"
    assert detect_discrepancies("Any allergies? No known allergies.", okafor) == []


def test_treatment_in_an_allergy_class_is_flagged(thompson) -> None:
    found = detect_discrepancies("For the cellulitis we could start a course of amoxicillin.", thompson)
    assert kinds(found) == ["allergy_class"] and found[0].subject == "Penicillins"
    assert found[0].record_source.id == "allergy-pt-001-penicillin" and found[0].severity == "high"


def test_lab_value_said_differs_from_measured(thompson) -> None:
    found = detect_discrepancies("Your HbA1c came back at 62 this time.", thompson)
    assert kinds(found) == ["lab_value"]
    d = found[0]
    assert d.record_source.id == "obs-pt-001-hba1c-2026-11-02" and "55" in (d.record_text or "")
    assert d.transcript.text == "HbA1c came back at 62"


def test_current_and_previous_values_are_consistent(thompson) -> None:
    text = "Your HbA1c has gone up from 48 to 55, and your kidney function, the eGFR, is 52. Recheck HbA1c in 3 months."
    assert detect_discrepancies(text, thompson) == []


def test_blood_pressure_said_vs_measured(thompson) -> None:
    assert detect_discrepancies("Blood pressure last time was 136 over 80.", thompson) == []
    found = detect_discrepancies("Your blood pressure was 150/95 in May.", thompson)
    assert kinds(found) == ["lab_value"] and found[0].record_source.id == "obs-pt-001-bp-2026-05-18"


def test_diagnosis_not_on_problem_list(thompson) -> None:
    found = detect_discrepancies("The scan suggests you also have atrial fibrillation.", thompson)
    assert kinds(found) == ["diagnosis"] and "atrial fibrillation" in found[0].description
    assert "Type 2 diabetes mellitus" in (found[0].record_text or "")


def test_listed_negated_or_family_diagnoses_are_not_flagged(thompson) -> None:
    text = ("Your type 2 diabetes and high blood pressure are stable. No sign of heart failure. "
            "Your mother had asthma.")  # fmt: skip
    assert detect_discrepancies(text, thompson) == []


def test_medicine_taken_but_not_recorded_and_stopped(thompson) -> None:
    found = detect_discrepancies(
        "I've been taking ibuprofen for the knee. I stopped taking atorvastatin.", thompson
    )
    assert kinds(found) == ["unrecorded_medicine", "stopped_medicine"]
    assert "ibuprofen" in found[0].description and found[1].record_source.id == "med-pt-001-atorvastatin"


def test_spans_carry_audio_times_from_words(thompson) -> None:
    text = "Your HbA1c came back at 62 today."
    words, cursor = [], 0.0
    for w in text.split():
        words.append(Word(text=w.strip("."), start_s=cursor, end_s=cursor + 0.4))
        cursor += 0.5
    found = detect_discrepancies(Transcript(text=text, words=words), thompson)
    span = found[0].transcript
    assert (span.start_s, span.end_s) == (0.5, 2.9)  # "HbA1c" .. "62"
    assert text[span.char_start : span.char_end] == span.text


def test_unpunctuated_lowercase_asr_output(thompson) -> None:
    text = "your h b a one c came back at sixty two and the e g f r is fifty two so we will recheck in three months"
    found = detect_discrepancies(text, thompson)
    assert kinds(found) == ["lab_value"] and "sixty two" in found[0].description
