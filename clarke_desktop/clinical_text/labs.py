"""Tests, scores and observations by name: one canonical name for each way it is written or said,
and the record's own test names mapped onto them ("Hemoglobin A1c/Hemoglobin.total in Blood" is
HbA1c). Questionnaire scores (GAD-7, PHQ-9) are tests whose value is the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from clarke_desktop.clinical_text.tokens import tokenize

# canonical -> aliases (lowercase, as tokens are joined by single spaces)
TESTS: dict[str, tuple[str, ...]] = {
    "HbA1c": ("hba1c", "a1c", "haemoglobin a1c", "hemoglobin a1c", "glycated haemoglobin", "glycated hemoglobin",
              "h b a one c", "hba one c", "a one c", "hb a1c", "hba 1c", "sugar levels", "hba1c level"),
    "eGFR": ("egfr", "gfr", "kidney function", "renal function", "glomerular filtration", "e g f r",
             "glomerular filtration rate"),
    "creatinine": ("creatinine", "creat"),
    "cholesterol": ("cholesterol", "total cholesterol", "chol"),
    "LDL": ("ldl", "ldl cholesterol", "ldl-c"),
    "HDL": ("hdl", "hdl cholesterol"),
    "triglycerides": ("triglycerides", "trigs"),
    "BNP": ("bnp", "nt-probnp", "pro-bnp", "nt probnp", "natriuretic peptide", "ntprobnp"),
    "troponin": ("troponin", "trop"),
    "potassium": ("potassium", "k+"),
    "sodium": ("sodium", "na+"),
    "urea": ("urea",),
    "haemoglobin": ("haemoglobin", "hemoglobin", "hb", "hgb"),
    "white cell count": ("white cell count", "wcc", "white count", "wbc", "white blood cells"),
    "platelets": ("platelets", "plts", "platelet count"),
    "CRP": ("crp", "c-reactive protein", "c reactive protein"),
    "ESR": ("esr",),
    "ALT": ("alt",),
    "ferritin": ("ferritin",),
    "vitamin B12": ("b12", "vitamin b12"),
    "vitamin D": ("vitamin d", "vit d"),
    "PSA": ("psa",),
    "INR": ("inr",),
    "TSH": ("tsh", "thyroid stimulating hormone"),
    "free T4": ("t4", "free t4", "ft4"),
    "glucose": ("glucose", "blood sugar", "blood glucose", "sugar", "bm", "cbg", "sugars", "blood sugars"),
    "blood pressure": ("blood pressure", "bp"),
    "heart rate": ("heart rate", "pulse", "hr", "pulse rate"),
    "respiratory rate": ("respiratory rate", "resp rate", "rr", "breathing rate"),
    "oxygen saturation": ("oxygen saturation", "sats", "o2 sats", "spo2", "saturations", "oxygen sats",
                          "oxygen levels", "o2 sat", "sat"),
    "temperature": ("temperature", "temp"),
    "weight": ("weight",),
    "height": ("height",),
    "BMI": ("bmi", "body mass index"),
    "peak flow": ("peak flow", "pefr", "peak expiratory flow"),
    "FEV1": ("fev1",),
    "ejection fraction": ("ejection fraction", "ef", "lvef"),
    "PHQ-9": ("phq-9", "phq9", "phq 9", "phq nine", "phq"),
    "GAD-7": ("gad-7", "gad7", "gad 7", "gad seven", "gad"),
    "AUDIT": ("audit score", "audit-c"),
}  # fmt: skip
# Record names (LOINC displays and the like) -> canonical, by the words they contain.
_RECORD_HINTS: tuple[tuple[str, str], ...] = (
    ("a1c", "HbA1c"), ("glycated", "HbA1c"), ("glomerular", "eGFR"), ("egfr", "eGFR"),
    ("creatinine", "creatinine"), ("ldl", "LDL"), ("hdl", "HDL"), ("triglyceride", "triglycerides"),
    ("natriuretic", "BNP"), ("bnp", "BNP"), ("troponin", "troponin"), ("potassium", "potassium"),
    ("sodium", "sodium"), ("urea", "urea"), ("hemoglobin", "haemoglobin"), ("haemoglobin", "haemoglobin"),
    ("leukocytes", "white cell count"), ("platelets", "platelets"), ("c reactive", "CRP"),
    ("c-reactive", "CRP"), ("ferritin", "ferritin"), ("cobalamin", "vitamin B12"), ("b12", "vitamin B12"),
    ("thyrotropin", "TSH"), ("tsh", "TSH"), ("thyroxine", "free T4"), ("glucose", "glucose"),
    ("blood pressure", "blood pressure"), ("heart rate", "heart rate"), ("respiratory rate", "respiratory rate"),
    ("oxygen saturation", "oxygen saturation"), ("body temperature", "temperature"), ("body weight", "weight"),
    ("body height", "height"), ("body mass index", "BMI"), ("peak", "peak flow"), ("fev1", "FEV1"),
    ("ejection fraction", "ejection fraction"), ("phq", "PHQ-9"), ("patient health questionnaire", "PHQ-9"),
    ("gad-7", "GAD-7"), ("generalized anxiety", "GAD-7"), ("generalised anxiety", "GAD-7"),
    ("cholesterol", "cholesterol"), ("prostate specific", "PSA"), ("inr", "INR"), ("alanine", "ALT"),
)  # fmt: skip
_ALIAS_TO_TEST: dict[tuple[str, ...], str] = {}
for _test, _aliases in TESTS.items():
    for _alias in (_test.lower(), *_aliases):
        _ALIAS_TO_TEST.setdefault(tuple(t.lower for t in tokenize(_alias)), _test)
_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _key in _ALIAS_TO_TEST:
    _BY_FIRST.setdefault(_key[0], []).append(_key)
for _keys in _BY_FIRST.values():
    _keys.sort(key=len, reverse=True)


def may_start_test(word: str) -> bool:
    return word in _BY_FIRST


def test_at(
    words: Sequence[str], i: int, extra: dict[tuple[str, ...], str] | None = None
) -> tuple[str, int] | None:
    """(canonical test, index one past its name) for the longest test name starting at words[i]."""
    best: tuple[str, int] | None = None
    for key in _BY_FIRST.get(words[i], ()):
        if tuple(words[i : i + len(key)]) == key:
            best = (_ALIAS_TO_TEST[key], i + len(key))
            break
    for key, test in (extra or {}).items():
        if tuple(words[i : i + len(key)]) == key and (best is None or i + len(key) > best[1]):
            best = (test, i + len(key))
    return best


@cache
def canonical_test(record_name: str) -> str:
    """The canonical test a recorded name is, or the recorded name itself when unknown."""
    words = tuple(t.lower for t in tokenize(record_name))
    if words in _ALIAS_TO_TEST:
        return _ALIAS_TO_TEST[words]
    lowered = record_name.lower()
    for hint, test in _RECORD_HINTS:
        if hint in lowered:
            return test
    return record_name
