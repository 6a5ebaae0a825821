"""The record as clinicians read it: units in their usual form and a recorded "No known drug allergy"
shown as a neutral fact, not as a red allergy alarm."""

from __future__ import annotations

import pytest

from clarke_desktop.schemas import Allergy, LabResult, SourceRef
from clarke_desktop.uk_format import unit_display

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    ("ucum", "shown"),
    [
        ("{score}", ""),
        ("10*9/L", "×10⁹/L"),
        ("mm[Hg]", "mmHg"),
        ("umol/L", "µmol/L"),
        ("mmol/mol", "mmol/mol"),
        (None, ""),
    ],
)
def test_units_as_clinicians_write_them(ucum: str | None, shown: str) -> None:
    assert unit_display(ucum) == shown


def test_a_score_has_no_unit_and_a_count_its_power_of_ten_in_the_letter() -> None:
    from clarke_desktop.letters.facts import lab_fact_line

    src = SourceRef(resource_type="Observation", id="o1")
    assert (
        lab_fact_line(LabResult(name="GAD-7", value="9", unit="{score}", date="2026-10-01", source=src))
        == "GAD-7: 9 (01/10/2026)."
    )
    wcc = LabResult(name="White cell count", value="7.2", unit="10*9/L", date="2026-10-01", source=src)
    assert lab_fact_line(wcc) == "White cell count: 7.2 ×10⁹/L (01/10/2026)."


def test_no_known_drug_allergy_is_a_neutral_fact(styled_app, qtbot) -> None:
    from clarke_desktop.gui.screens.patient import AllergyBanner

    src = SourceRef(resource_type="AllergyIntolerance", id="a1")
    nkda = AllergyBanner([Allergy(substance="No known drug allergy", source=src)])
    qtbot.addWidget(nkda)
    assert nkda.objectName() == "nkdaBanner" and nkda.accessibleName() == "No known drug allergies"
    mixed = AllergyBanner(
        [Allergy(substance="No known drug allergy", source=src), Allergy(substance="Latex", source=src)]
    )
    qtbot.addWidget(mixed)
    assert mixed.objectName() == "allergyBanner" and mixed.accessibleName() == "Allergies: Latex"
