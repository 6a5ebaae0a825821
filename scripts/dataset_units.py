"""US conventional -> UK SI units for Synthea laboratory Observations.

Each rule names the LOINC code Synthea writes, the code for the same test in the UK unit (a
different LOINC code wherever the property changes, e.g. mass -> substance concentration), the
factor, the rounding UK laboratories report with, and the UK reference range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# Molar masses / conversion constants (the brief's figures, all standard).
GLUCOSE_MG_DL_PER_MMOL_L = 18.016  # glucose 180.16 g/mol
CHOLESTEROL_MG_DL_PER_MMOL_L = 38.67  # cholesterol 386.7 g/mol
TRIGLYCERIDE_MG_DL_PER_MMOL_L = 88.57  # triolein 885.7 g/mol
CREATININE_UMOL_L_PER_MG_DL = 88.42  # creatinine 113.1 g/mol
UREA_MMOL_L_PER_BUN_MG_DL = 10 / 28.014  # two N atoms per urea: BUN mg/dL -> urea mmol/L
CALCIUM_MG_DL_PER_MMOL_L = 4.008
BILIRUBIN_UMOL_L_PER_MG_DL = 17.104


def hba1c_percent_to_mmol_mol(percent: float) -> float:
    """DCCT/NGSP % -> IFCC mmol/mol (master equation)."""
    return (percent - 2.15) * 10.929


@dataclass(frozen=True)
class Rule:
    code: str  # LOINC code after conversion
    display: str
    text: str
    unit: str  # display unit (UK style)
    ucum: str
    convert: Any  # callable float -> float
    dp: int  # decimals reported
    low: float | None = None
    high: float | None = None
    low_female: float | None = None
    high_female: float | None = None
    relabel: bool = True  # False: same test and unit, only rounded to what is reported


def _div(k: float):
    return lambda v: v / k


def _mul(k: float):
    return lambda v: v * k


def _same(v: float) -> float:
    return v


RULES: dict[str, Rule] = {
    "2339-0": Rule(
        "15074-8",
        "Glucose [Moles/volume] in Blood",
        "Glucose",
        "mmol/L",
        "mmol/L",
        _div(GLUCOSE_MG_DL_PER_MMOL_L),
        1,
        3.5,
        7.8,
    ),
    "4548-4": Rule(
        "59261-8",
        "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
        "HbA1c",
        "mmol/mol",
        "mmol/mol",
        hba1c_percent_to_mmol_mol,
        0,
        20,
        41,
    ),
    "38483-4": Rule(
        "59826-8",
        "Creatinine [Moles/volume] in Blood",
        "Creatinine",
        "µmol/L",
        "umol/L",
        _mul(CREATININE_UMOL_L_PER_MG_DL),
        0,
        59,
        104,
        45,
        84,
    ),
    "2093-3": Rule(
        "14647-2",
        "Cholesterol [Moles/volume] in Serum or Plasma",
        "Total cholesterol",
        "mmol/L",
        "mmol/L",
        _div(CHOLESTEROL_MG_DL_PER_MMOL_L),
        1,
        None,
        5.0,
    ),
    "2085-9": Rule(
        "14646-4",
        "Cholesterol in HDL [Moles/volume] in Serum or Plasma",
        "HDL cholesterol",
        "mmol/L",
        "mmol/L",
        _div(CHOLESTEROL_MG_DL_PER_MMOL_L),
        1,
        1.0,
        None,
        1.2,
        None,
    ),
    "18262-6": Rule(
        "22748-8",
        "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
        "LDL cholesterol",
        "mmol/L",
        "mmol/L",
        _div(CHOLESTEROL_MG_DL_PER_MMOL_L),
        1,
        None,
        3.0,
    ),
    "2571-8": Rule(
        "14927-8",
        "Triglyceride [Moles/volume] in Serum or Plasma",
        "Triglycerides",
        "mmol/L",
        "mmol/L",
        _div(TRIGLYCERIDE_MG_DL_PER_MMOL_L),
        1,
        None,
        1.7,
    ),
    "6299-2": Rule(
        "22664-7",
        "Urea [Moles/volume] in Serum or Plasma",
        "Urea",
        "mmol/L",
        "mmol/L",
        _mul(UREA_MMOL_L_PER_BUN_MG_DL),
        1,
        2.5,
        7.8,
    ),
    "49765-1": Rule(
        "2000-8",
        "Calcium [Moles/volume] in Serum or Plasma",
        "Calcium",
        "mmol/L",
        "mmol/L",
        _div(CALCIUM_MG_DL_PER_MMOL_L),
        2,
        2.2,
        2.6,
    ),
    "1975-2": Rule(
        "14631-6",
        "Bilirubin.total [Moles/volume] in Serum or Plasma",
        "Bilirubin",
        "µmol/L",
        "umol/L",
        _mul(BILIRUBIN_UMOL_L_PER_MG_DL),
        0,
        None,
        21,
    ),
    # Same property, UK unit: same LOINC code.
    "718-7": Rule(
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "Haemoglobin",
        "g/L",
        "g/L",
        _mul(10),
        0,
        130,
        170,
        120,
        150,
    ),
    "786-4": Rule(
        "786-4", "MCHC [Mass/volume] by Automated count", "MCHC", "g/L", "g/L", _mul(10), 0, 320, 360
    ),
    # Synthea labels total protein g/dL but its values (60-80) are already g/L; globulin the other
    # way round (2.0-3.5 "g/L" are g/dL). Checked over all 55 results of each in the source.
    "2885-2": Rule(
        "2885-2", "Protein [Mass/volume] in Serum or Plasma", "Total protein", "g/L", "g/L", _same, 0, 60, 80
    ),
    "10834-0": Rule(
        "10834-0",
        "Globulin [Mass/volume] in Serum by calculation",
        "Globulin",
        "g/L",
        "g/L",
        _mul(10),
        0,
        20,
        35,
    ),
    "1751-7": Rule(
        "1751-7", "Albumin [Mass/volume] in Serum or Plasma", "Albumin", "g/L", "g/L", _mul(10), 0, 35, 50
    ),
    "4544-3": Rule(
        "4544-3",
        "Hematocrit [Volume Fraction] of Blood by Automated count",
        "Haematocrit",
        "L/L",
        "L/L",
        _div(100),
        2,
        0.40,
        0.50,
        0.36,
        0.46,
    ),
    "20570-8": Rule(
        "20570-8",
        "Hematocrit [Volume Fraction] of Blood",
        "Haematocrit",
        "L/L",
        "L/L",
        _div(100),
        2,
        0.40,
        0.50,
        0.36,
        0.46,
    ),
    "777-3": Rule(
        "777-3",
        "Platelets [#/volume] in Blood by Automated count",
        "Platelets",
        "10*9/L",
        "10*9/L",
        _same,
        0,
        150,
        400,
    ),
    "6690-2": Rule(
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "White cell count",
        "10*9/L",
        "10*9/L",
        _same,
        1,
        4.0,
        11.0,
    ),
    "789-8": Rule(
        "789-8",
        "Erythrocytes [#/volume] in Blood by Automated count",
        "Red cell count",
        "10*12/L",
        "10*12/L",
        _same,
        2,
        4.5,
        5.5,
        3.8,
        4.8,
    ),
    "2857-1": Rule(
        "2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "PSA", "µg/L", "ug/L", _same, 2
    ),
    "33762-6": Rule(
        "33762-6",
        "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
        "NT-proBNP",
        "ng/L",
        "ng/L",
        _same,
        0,
        None,
        400,
    ),
    # Already SI: keep the value, add the UK reference range.
    "2947-0": Rule(
        "2947-0", "Sodium [Moles/volume] in Blood", "Sodium", "mmol/L", "mmol/L", _same, 0, 133, 146
    ),
    "6298-4": Rule(
        "6298-4", "Potassium [Moles/volume] in Blood", "Potassium", "mmol/L", "mmol/L", _same, 1, 3.5, 5.3
    ),
    "2069-3": Rule(
        "2069-3", "Chloride [Moles/volume] in Blood", "Chloride", "mmol/L", "mmol/L", _same, 0, 95, 108
    ),
    "20565-8": Rule(
        "20565-8",
        "Carbon dioxide, total [Moles/volume] in Blood",
        "Bicarbonate",
        "mmol/L",
        "mmol/L",
        _same,
        0,
        22,
        29,
    ),
    "33914-3": Rule(
        "33914-3",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or "
        "Plasma by Creatinine-based formula (MDRD)",
        "eGFR",
        "mL/min/1.73m2",
        "mL/min/{1.73_m2}",
        _same,
        0,
        90,
        None,
    ),
    "787-2": Rule("787-2", "MCV [Entitic volume] by Automated count", "MCV", "fL", "fL", _same, 0, 80, 100),
    "785-6": Rule("785-6", "MCH [Entitic mass] by Automated count", "MCH", "pg", "pg", _same, 1, 27, 32),
    "1742-6": Rule(
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "ALT",
        "U/L",
        "U/L",
        _same,
        0,
        None,
        40,
    ),
    "1920-8": Rule(
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "AST",
        "U/L",
        "U/L",
        _same,
        0,
        None,
        40,
    ),
    "6768-6": Rule(
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "Alkaline phosphatase",
        "U/L",
        "U/L",
        _same,
        0,
        30,
        130,
    ),
}


def _rounding(code: str, unit: str, ucum: str, dp: int) -> Rule:
    """Same test, same unit: only the many decimals Synthea writes are rounded off."""
    return Rule(code, "", "", unit, ucum, _same, dp, relabel=False)


ROUNDING = [
    ("8302-2", "cm", "cm", 1),  # height
    ("29463-7", "kg", "kg", 1),  # weight
    ("39156-5", "kg/m2", "kg/m2", 1),  # BMI
    ("8331-1", "°C", "Cel", 1),  # temperature
    ("8480-6", "mmHg", "mm[Hg]", 0),  # systolic (a component of the BP panel)
    ("8462-4", "mmHg", "mm[Hg]", 0),  # diastolic
    ("72514-3", "{score}", "{score}", 0),  # pain 0-10
    ("19926-5", "%", "%", 0),  # FEV1/FVC
    ("10230-1", "%", "%", 0),  # LV ejection fraction
    ("72106-8", "{score}", "{score}", 0),  # MMSE
    ("38265-5", "{T-score}", "{T-score}", 1),  # DXA
    ("32207-3", "fL", "fL", 1),
    ("32623-1", "fL", "fL", 1),
    ("21000-5", "fL", "fL", 1),
    ("14959-1", "mg/g", "mg/g", 1),  # urine albumin/creatinine: kept in mg/g (its LOINC property)
]
IGE_CODES = [
    "6206-7",
    "6273-7",
    "6082-2",
    "6246-3",
    "6276-0",
    "6106-9",
    "6248-9",
    "7258-7",
    "6189-5",
    "6085-5",
    "6833-8",
    "6095-4",
    "6075-6",
    "6844-5",
    "6158-0",
]
for _code, _unit, _ucum, _dp in ROUNDING:
    RULES[_code] = _rounding(_code, _unit, _ucum, _dp)
for _code in IGE_CODES:
    RULES[_code] = _rounding(_code, "kU/L", "kU/L", 2)


def _round(v: float, dp: int) -> float | int:
    return int(round(v)) if dp == 0 else round(v, dp)


def _range_text(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g} {unit}"
    if high is not None:
        return f"<{high:g} {unit}"
    return f">{low:g} {unit}"


def convert_observation(obs: dict[str, Any], sex: str | None) -> bool:
    """Convert one Observation in place. Returns True when a rule applied."""
    coding = obs.get("code", {}).get("coding", [])
    if not coding or coding[0].get("system") != LOINC:
        return False
    rule = RULES.get(coding[0]["code"])
    vq = obs.get("valueQuantity")
    if rule is None or vq is None or "value" not in vq:
        return False
    vq.update(
        value=_round(rule.convert(float(vq["value"])), rule.dp), unit=rule.unit, system=UCUM, code=rule.ucum
    )
    if rule.relabel:
        obs["code"] = {
            "coding": [{"system": LOINC, "code": rule.code, "display": rule.display}],
            "text": rule.text,
        }
    female = sex == "female"
    low = rule.low_female if female and rule.low_female is not None else rule.low
    high = rule.high_female if female and rule.high_female is not None else rule.high
    if low is not None or high is not None:
        rr: dict[str, Any] = {}
        if low is not None:
            rr["low"] = {"value": low, "unit": rule.unit, "system": UCUM, "code": rule.ucum}
        if high is not None:
            rr["high"] = {"value": high, "unit": rule.unit, "system": UCUM, "code": rule.ucum}
        rr["text"] = _range_text(low, high, rule.unit)
        obs["referenceRange"] = [rr]
    return True
