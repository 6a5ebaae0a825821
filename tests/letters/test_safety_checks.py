"""The fact check and the discrepancy rules on the failures named in the safety issue: clause-bound
support, drug swaps, look-alike units, class allergies, unrecorded medicines, scores and units."""

from __future__ import annotations

from clarke_desktop.letters.discrepancies import detect_discrepancies
from clarke_desktop.letters.fact_check import verify_letter
from clarke_desktop.schemas import Allergy, Demographics, LabResult, Medication, PatientContext, SourceRef


def ref(kind: str, id_: str) -> SourceRef:
    return SourceRef(resource_type=kind, id=id_, version_id="1")


def context(*, meds=(), allergies=(), labs=()) -> PatientContext:
    return PatientContext(
        patient_id="p1",
        demographics=Demographics(
            name="Test Patient", date_of_birth="1960-01-01", source=ref("Patient", "p1")
        ),
        medications=list(meds),
        allergies=list(allergies),
        recent_labs=list(labs),
    )


def med(name: str, dose: str | None = None, frequency: str | None = None, id_: str = "m1") -> Medication:
    return Medication(
        name=name, dose=dose, frequency=frequency, status="active", source=ref("MedicationRequest", id_)
    )


def facts(letter: str, transcript: str, ctx: PatientContext | None = None) -> dict[str, bool]:
    return {f.text: f.supported for f in verify_letter(letter, transcript, ctx)}


SAID = "Doctor: What do you take?\nPatient: Lisinopril ten milligrams once a day, and amlodipine 5 mg. I rest for 30 minutes after, maybe 6 hours a day."


def test_a_dose_and_frequency_belong_to_their_drug() -> None:
    found = facts("Lisinopril 600 mg every 6 hours.", SAID)
    assert found == {"Lisinopril": False, "600 mg": False, "every 6 hours": False}
    assert facts("Lisinopril 10 mg once daily; amlodipine 5 mg.", SAID) == {
        "Lisinopril": True, "10 mg": True, "once daily": True, "amlodipine": True, "5 mg": True,
    }  # fmt: skip


def test_a_drug_swapped_for_another_one_said_is_unsupported() -> None:
    # amlodipine was said, but with 5 mg, not lisinopril's 10 mg once a day
    assert facts("Amlodipine 10 mg once daily.", SAID) == {
        "Amlodipine": False,
        "10 mg": False,
        "once daily": False,
    }


def test_a_dose_is_not_supported_by_a_bare_number_or_minutes() -> None:
    assert facts("Give prednisolone 30 mg.", SAID)["30 mg"] is False
    assert facts("She rests for 30 minutes.", SAID)["30 minutes"] is True


def test_a_value_is_supported_only_by_the_same_test() -> None:
    said = "Your potassium was 4.2 and the sodium 138."
    assert facts("Sodium 138, potassium 4.2.", said) == {"138": True, "4.2": True}
    assert facts("Sodium 4.2, potassium 138.", said) == {"4.2": False, "138": False}


def test_hba1c_units_are_converted_with_the_ifcc_formula() -> None:
    ctx = context(labs=[LabResult(name="Hemoglobin A1c/Hemoglobin.total in Blood", value="8.0", unit="%",
                                  date="2026-10-01", source=ref("Observation", "o1"))])  # fmt: skip
    assert facts("HbA1c 64 mmol/mol.", "nothing said", ctx) == {"64 mmol/mol": True}
    assert facts("HbA1c 70 mmol/mol.", "nothing said", ctx) == {"70 mmol/mol": False}


def test_dates_need_the_same_date() -> None:
    said = "The scan was on the 3rd of March 2025."
    assert facts("Scan on 03/03/2025.", said) == {"03/03/2025": True}
    assert facts("Scan on 04/03/2025.", said) == {"04/03/2025": False}


def test_allergy_support_and_no_support() -> None:
    said = "Any allergies?\nOnly penicillin, it gave me a rash."
    assert facts("Allergic to amoxicillin.", said) == {"amoxicillin": True}  # a penicillin
    assert facts("Allergic to codeine.", said) == {"codeine": False}


# --- discrepancies ------------------------------------------------------------------------------


def kinds(found) -> list[tuple[str, str | None]]:
    return [(d.kind, d.subject) for d in found]


def test_a_medicine_taken_but_not_on_the_record() -> None:
    ctx = context(meds=[med("Metformin 500mg tablets", "500 mg", "twice daily")])
    said = "I'm taking metformin 500 mg twice a day and gliclazide forty milligrams in the morning."
    found = detect_discrepancies(said, ctx)
    assert kinds(found) == [("unrecorded_medicine", "gliclazide")]
    assert said[found[0].transcript.char_start : found[0].transcript.char_end] == found[0].transcript.text


def test_a_drug_of_a_recorded_allergy_class_is_flagged_whatever_the_cue() -> None:
    ctx = context(allergies=[Allergy(substance="ACE inhibitors", reaction="angioedema",
                                     source=ref("AllergyIntolerance", "a1"))])  # fmt: skip
    found = detect_discrepancies("Her blood pressure is up, so ramipril.", ctx)
    assert kinds(found) == [("allergy_class", "ACE inhibitors")]
    assert found[0].severity == "high" and found[0].record_source.id == "a1"


def test_an_allergy_said_to_a_multi_word_class_against_a_recorded_member() -> None:
    ctx = context(meds=[med("Ramipril 5mg capsules", "5 mg", "once daily")])
    found = detect_discrepancies("I have an allergy to ACE inhibitors, my lips swelled.", ctx)
    assert ("allergy", "ACE inhibitors") in kinds(found) and ("allergy_class", "ACE inhibitors") in kinds(
        found
    )


def test_a_record_that_prescribes_from_its_own_allergy_class() -> None:
    ctx = context(meds=[med("Amoxicillin 500mg capsules", "500 mg", "three times a day")],
                  allergies=[Allergy(substance="Penicillin", source=ref("AllergyIntolerance", "a2"))])  # fmt: skip
    found = detect_discrepancies("Nothing about medicines today.", ctx)
    assert kinds(found) == [("allergy_class", "Penicillins")] and found[0].transcript.char_end == 0


def test_a_score_said_against_a_recorded_score() -> None:
    ctx = context(labs=[LabResult(name="GAD-7 score", value="9", unit="{score}", date="2026-09-01",
                                  source=ref("Observation", "gad"))])  # fmt: skip
    assert kinds(detect_discrepancies("Your GAD-7 today is 8.", ctx)) == [("lab_value", "GAD-7")]
    assert detect_discrepancies("Your GAD-7 was 9 last time.", ctx) == []


def test_hba1c_said_in_mmol_mol_against_a_record_in_percent() -> None:
    ctx = context(labs=[LabResult(name="Hemoglobin A1c", value="8.0", unit="%", date="2026-10-01",
                                  source=ref("Observation", "a1c"))])  # fmt: skip
    assert detect_discrepancies("Your HbA1c was 64 mmol/mol.", ctx) == []
    assert kinds(detect_discrepancies("Your HbA1c was 75.", ctx)) == [("lab_value", "HbA1c")]


def test_negated_and_hypothetical_mentions_are_not_statements() -> None:
    ctx = context(meds=[med("Ramipril 5mg capsules", "5 mg", "once daily")])
    said = "She does not take ibuprofen. If the ramipril 10 mg doesn't suit you, we could try losartan."
    assert detect_discrepancies(said, ctx) == []


def test_dose_and_frequency_kinds_are_separate() -> None:
    ctx = context(meds=[med("Ramipril 5mg capsules", "5 mg", "once daily")])
    assert kinds(detect_discrepancies("I take ramipril 10 mg once a day.", ctx)) == [("dose", "ramipril")]
    assert kinds(detect_discrepancies("I take ramipril 5 mg twice a day.", ctx)) == [
        ("frequency", "ramipril")
    ]


def test_a_date_is_bound_to_its_event() -> None:
    said = "The echo was on the 3rd of March 2025 and your bloods on the 5th of March 2025."
    assert facts("Echo on 03/03/2025.", said) == {"03/03/2025": True}
    assert facts("Echo on 05/03/2025.", said) == {"05/03/2025": False}  # that was the bloods' date
    assert facts("Bloods on 05/03/2025.", said) == {"05/03/2025": True}


def test_locale_us_reads_the_letter_and_transcript_month_first() -> None:
    said = "Your scan was on March 4th, 2025."
    assert {f.text: f.supported for f in verify_letter("Scan 03/04/2025.", said, None, locale="US")} == {
        "03/04/2025": True
    }
    assert {f.text: f.supported for f in verify_letter("Scan 03/04/2025.", said, None)} == {
        "03/04/2025": False
    }
