"""NHS numbers: modulus 11 check digit, test range, one per patient, no duplicates."""

from __future__ import annotations

import pytest
from dataset_common import is_valid_nhs_number, make_nhs_number, nhs_check_digit

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9434765919", True),  # NHS Digital's published example
        ("943 476 5919", True),
        ("9434765918", False),  # wrong check digit
        ("4010232137", True),
        ("401023213", False),  # too short
        ("943476591X", False),
    ],
)
def test_modulus_11(number: str, valid: bool) -> None:
    assert is_valid_nhs_number(number) is valid


def test_check_digit_10_means_no_number() -> None:
    # weights 10..2: a stem whose remainder gives 11-1 = 10 has no valid NHS number
    stem = next(f"999{n:06d}" for n in range(1000) if nhs_check_digit(f"999{n:06d}") is None)
    assert nhs_check_digit(stem) is None
    made = make_nhs_number(int(stem[3:]))
    assert is_valid_nhs_number(made) and made[:9] != stem


def test_every_patient_has_one_valid_test_range_nhs_number(demo_resources, population) -> None:
    patients = [r for r in [*demo_resources, *population] if r["resourceType"] == "Patient"]
    assert len(patients) == 55
    numbers = []
    for p in patients:
        ids = [i["value"] for i in p["identifier"] if i["system"] == NHS]
        assert len(ids) == 1, p["id"]
        assert is_valid_nhs_number(ids[0]), (p["id"], ids[0])
        assert ids[0].startswith("999"), "only the test range that is never issued to real people"
        numbers.append(ids[0])
    assert len(set(numbers)) == len(numbers)
