"""Each reading rule of the one clinical-language reader, on the forms named in the safety issue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clarke_desktop.clinical_text.context import Status
from clarke_desktop.clinical_text.dates import find_dates
from clarke_desktop.clinical_text.numbers import parse_number
from clarke_desktop.clinical_text.reader import read
from clarke_desktop.clinical_text.tokens import tokenize


@pytest.mark.parametrize(
    ("said", "value"),
    [
        ("one thirty", "130"),
        ("one seventeen", "117"),
        ("one hundred and fifty", "150"),
        ("a hundred and twenty", "120"),
        ("seven point five", "7.5"),
        ("two and a half", "2.5"),
        ("1,000", "1000"),
        ("twenty nineteen", "2019"),
        ("fifty-five", "55"),
        ("nine nine nine", "999"),
        ("one oh five", "105"),
        ("sixties", "60"),
    ],
)
def test_numbers_in_digits_and_words(said: str, value: str) -> None:
    parsed = parse_number(tokenize(said), 0)
    assert parsed is not None and parsed.value == Decimal(value) and parsed.end == len(tokenize(said))


def test_repeated_numbers_are_not_merged() -> None:
    reading = read("it was five, five and then twenty")
    assert [q.value for q in reading.quantities] == [5, 5, 20]


def test_blood_pressure_as_x_over_y() -> None:
    for text in ("BP one seventeen over fifty six", "BP 117/56"):
        [q] = read(text).quantities
        assert (q.value, q.over) == (117, 56)


def test_units_and_doses() -> None:
    reading = read("metformin five hundred milligrams and 1.5g paracetamol, two puffs of salbutamol")
    doses = {d.canonical: [(q.value, q.unit) for q in d.doses] for d in reading.drugs}
    assert doses == {
        "metformin": [(500, "mg")],
        "paracetamol": [(Decimal("1.5"), "g")],
        "salbutamol": [(2, "puffs")],
    }


@pytest.mark.parametrize(
    ("text", "per_day"),
    [("od", "1"), ("bd", "2"), ("tds", "3"), ("qds", "4"), ("bid", "2"), ("tid", "3"), ("qid", "4"),
     ("twice daily", "2"), ("every 6 hours", "4"), ("three times a day", "3"), ("once weekly", "0.142857"),
     ("x6/day", "6"), ("4 hourly", "6")],
)  # fmt: skip
def test_frequencies_reduce_to_doses_per_day(text: str, per_day: str) -> None:
    [freq] = read(f"ramipril 5 mg {text}").frequencies
    assert freq.per_day is not None and abs(freq.per_day - Decimal(per_day)) < Decimal("0.001")


def test_as_required_has_no_per_day_figure() -> None:
    for text in ("prn", "as required", "when needed", "as and when"):
        [freq] = read(f"salbutamol {text}").frequencies
        assert freq.per_day is None


@pytest.mark.parametrize(
    ("text", "days"),
    [("3/7", 3), ("2/52", 14), ("6/12", 180), ("two weeks", 14), ("for a week", 7), ("5d", 5),
     ("a couple of weeks", 14), ("in a week's time", 7), ("next week", 7)],
)  # fmt: skip
def test_uk_shorthand_and_spoken_durations(text: str, days: int) -> None:
    [d] = read(text).durations
    assert d.days == days


def test_ranges_keep_both_ends() -> None:
    [d] = read("review in 3-5d").durations
    assert (d.days, d.upper_days) == (3, 5)
    [d] = read("about three to four days").durations
    assert (d.days, d.upper_days) == (3, 4)


def test_a_written_single_value_is_supported_by_a_said_range_end_but_not_the_reverse() -> None:
    [written] = read("x6/day").frequencies
    [said] = read("six or seven times a day").frequencies
    assert written.same_as(said) and not said.same_as(written)


@pytest.mark.parametrize(
    ("text", "iso"),
    [("15/03/2024", "2024-03-15"), ("15th of March 2024", "2024-03-15"), ("August of 2019", "2019-08"),
     ("March 3rd, 2024", "2024-03-03"), ("since 2019", "2019"), ("03/15/2024", "2024-03-15"), ("2024-03-15", "2024-03-15")],
)  # fmt: skip
def test_dates_day_first_with_named_months(text: str, iso: str) -> None:
    assert [d.iso for d in find_dates(text)] == [iso]


def test_locale_us_reads_numeric_dates_month_first() -> None:
    assert [d.iso for d in find_dates("03/04/2024", locale="US")] == ["2024-03-04"]
    assert [d.iso for d in find_dates("03/04/2024")] == ["2024-04-03"]


def test_things_that_are_not_facts() -> None:
    text = "1. Type 2 diabetes, CKD stage 3a.\n2) GAD-7 and PHQ-9 done at 10:30 and 3pm. 1st visit."
    reading = read(text)
    assert reading.quantities == [] and reading.durations == []


def test_list_numbering_inside_a_line() -> None:
    assert read("Plan - 1) ibuprofen 400 mg").quantities[0].value == 400


def test_drug_names_brands_and_us_names_are_canonical() -> None:
    reading = read("Ventolin, Nurofen, acetaminophen and the blue inhaler")
    assert [d.canonical for d in reading.drugs] == ["salbutamol", "ibuprofen", "paracetamol", "salbutamol"]


def test_context_negation_stopped_planned_family_allergy() -> None:
    def status(text: str) -> Status:
        return next(d for d in read(text).drugs).status

    assert status("She denies taking ibuprofen") is Status.NEGATED
    assert status("He stopped the atorvastatin") is Status.STOPPED
    assert status("We will start gliclazide") is Status.PLANNED
    assert status("you can stop the aspirin") is Status.PLANNED
    assert status("His mother takes warfarin") is Status.FAMILY
    assert status("She is allergic to penicillin") is Status.ALLERGY
    assert status("He had a reaction to codeine") is Status.ALLERGY
    assert status("I take metformin") is Status.CURRENT


def test_penicillin_in_allergy_talk_is_the_class() -> None:
    [d] = read("allergic to penicillin").drugs
    assert d.is_class and d.canonical == "Penicillins"
    [d] = read("penicillin V 500 mg four times a day").drugs
    assert not d.is_class


def test_doses_bind_to_their_own_drug() -> None:
    reading = read("lisinopril 10 mg once daily and amlodipine 5 mg at night")
    bound = {
        d.canonical: ([q.value for q in d.doses], [f.per_day for f in d.frequencies]) for d in reading.drugs
    }
    assert bound == {"lisinopril": ([10], [1]), "amlodipine": ([5], [1])}


def test_an_answer_binds_to_the_drug_asked_about_in_a_dialogue() -> None:
    text = "What dose of metformin are you on?\nFive hundred milligrams, twice a day."
    [drug] = read(text, dialogue=True).drugs
    assert [q.value for q in drug.doses] == [500] and [f.per_day for f in drug.frequencies] == [2]
    [drug] = read(text).drugs  # written text: sentences do not bind across
    assert drug.doses == []


def test_values_bind_to_their_test() -> None:
    reading = read("HbA1c 58 mmol/mol, eGFR 52 and GAD-7 score 9.")
    assert {t.test: [q.value for q in t.values] for t in reading.tests} == {
        "HbA1c": [58],
        "eGFR": [52],
        "GAD-7": [9],
    }


def test_a_number_is_not_read_as_a_test_unit() -> None:
    reading = read("lip swelling for the past 1 hr")
    assert reading.tests == [] and reading.durations[0].days * 24 == 1


def test_offsets_are_code_points_in_the_text_as_given() -> None:
    text = "Naïve café — metformin 500 mg 😊 bd"
    reading = read(text)
    [drug] = reading.drugs
    assert reading.snippet(drug.ti, drug.tj) == "metformin"
    start, end = reading.span(drug.doses[0].ti, drug.doses[0].tj)
    assert text[start:end] == "500 mg"


def test_counts_per_litre_in_every_written_form_are_one_unit() -> None:
    reading = read("WCC 7.2 ×10⁹/L, platelets 250 x10^9/L, RBC 4.5 ×10¹²/L")
    assert [(t.test, [(q.value, q.unit) for q in t.values]) for t in reading.tests] == [
        ("white cell count", [(Decimal("7.2"), "10*9/L")]),
        ("platelets", [(Decimal("250"), "10*9/L")]),
    ]
    assert [(q.value, q.unit) for q in reading.quantities if q.unit == "10*12/L"] == [(Decimal("4.5"), "10*12/L")]
    assert not [q for q in reading.quantities if q.value == 10]  # the "10" of the unit is no value
