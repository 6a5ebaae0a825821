"""Units: the ways each is written or said, and the conversions the checks need.

Conversions: mass (g, mg, mcg), volume (L, mL), and three lab units whose two systems are both in
use: HbA1c % (DCCT/NGSP) and mmol/mol (IFCC; IFCC = 10.929 x (NGSP - 2.15), the IFCC/NGSP master
equation), glucose mg/dL and mmol/L (molar mass 180.16 g/mol: x 18.016), creatinine mg/dL and
umol/L (molar mass 113.12 g/mol: x 88.42).
"""

from __future__ import annotations

from decimal import Decimal

from clarke_desktop.clinical_text.tokens import tokenize

# canonical unit -> written/spoken forms (each a tuple of lowercase tokens)
UNITS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mmol/mol": (("mmol", "/", "mol"), ("millimoles", "per", "mole"), ("millimole", "per", "mole"),
                 ("mmol", "per", "mol"), ("mmol", "per", "mole")),
    "mmol/L": (("mmol", "/", "l"), ("millimoles", "per", "litre"), ("millimoles", "per", "liter"),
               ("mmol", "per", "litre"), ("mmol", "/", "litre"), ("mmol",), ("millimoles",)),
    "mg/dL": (("mg", "/", "dl"), ("milligrams", "per", "decilitre"), ("milligrams", "per", "deciliter"),
              ("mg", "per", "dl"), ("mgdl",)),
    "mL/min/1.73m2": (("ml", "/", "min", "/", "1.73m2"), ("ml", "/", "min", "/", "1.73", "m2")),
    "mL/min": (("ml", "/", "min"), ("mls", "per", "minute"), ("ml", "per", "minute"), ("mls", "/", "min")),
    "L/min": (("l", "/", "min"), ("litres", "per", "minute"), ("liters", "per", "minute")),
    "umol/L": (("umol", "/", "l"), ("micromoles", "per", "litre"), ("micromol", "/", "l"),
               ("µmol", "/", "l"), ("micromoles", "per", "liter")),
    "ng/L": (("ng", "/", "l"), ("nanograms", "per", "litre")),
    "ng/mL": (("ng", "/", "ml"),),
    "pg/mL": (("pg", "/", "ml"),),
    "mU/L": (("mu", "/", "l"), ("miu", "/", "l"), ("milliunits", "per", "litre")),
    "pmol/L": (("pmol", "/", "l"), ("picomoles", "per", "litre")),
    "g/L": (("g", "/", "l"), ("grams", "per", "litre")),
    "g/dL": (("g", "/", "dl"),),
    "10*9/L": (("x", "10", "^", "9", "/", "l"), ("x10", "^", "9", "/", "l"), ("10", "*", "9", "/", "l"),
               ("×", "10", "⁹", "/", "l"), ("x", "10", "⁹", "/", "l"), ("×", "10", "^", "9", "/", "l")),
    "10*12/L": (("x", "10", "^", "12", "/", "l"), ("×", "10", "¹²", "/", "l"), ("x", "10", "¹²", "/", "l"),
                ("10", "*", "12", "/", "l")),
    "mmHg": (("mmhg",), ("millimetres", "of", "mercury"), ("mm", "hg"), ("millimeters", "of", "mercury")),
    "mg": (("mg",), ("milligrams",), ("milligram",), ("mgs",), ("milligramme",), ("milligrammes",)),
    "g": (("g",), ("grams",), ("gram",), ("gm",), ("grammes",), ("gramme",)),
    "mcg": (("mcg",), ("micrograms",), ("microgram",), ("ug",), ("µg",)),
    "units": (("units",), ("unit",), ("iu",)),
    "mL": (("ml",), ("mls",), ("millilitres",), ("milliliters",), ("millilitre",), ("milliliter",), ("cc",)),
    "L": (("litres",), ("liters",), ("litre",), ("liter",)),
    "%": (("%",), ("percent",), ("per", "cent")),
    "kg": (("kg",), ("kilograms",), ("kilos",), ("kilogram",), ("kgs",)),
    "cm": (("cm",), ("centimetres",), ("centimeters",)),
    "bpm": (("bpm",), ("beats", "per", "minute"), ("beats", "a", "minute")),
    "/min": (("breaths", "per", "minute"), ("breaths", "a", "minute")),
    "degC": (("degrees",), ("degrees", "celsius"), ("°c",), ("c",)),
    "puffs": (("puffs",), ("puff",)),
    "tablets": (("tablets",), ("tablet",), ("tabs",), ("tab",), ("pills",), ("pill",)),
    "capsules": (("capsules",), ("capsule",), ("caps",)),
    "drops": (("drops",), ("drop",)),
    "sachets": (("sachets",), ("sachet",)),
    "patches": (("patches",), ("patch",)),
    "sprays": (("sprays",), ("spray",)),
}  # fmt: skip
_FORMS: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _canonical, _forms in UNITS.items():
    for _form in _forms:
        _FORMS.setdefault(_form[0], []).append((_form, _canonical))
for _options in _FORMS.values():
    _options.sort(key=lambda f: -len(f[0]))

MASS_MG = {"mg": Decimal(1), "g": Decimal(1000), "mcg": Decimal("0.001")}
VOLUME_ML = {"mL": Decimal(1), "L": Decimal(1000)}
DOSE_UNITS = frozenset({"mg", "g", "mcg", "units", "mL", "puffs", "tablets", "capsules", "drops", "sachets",
                        "patches", "sprays"})  # fmt: skip
# "1 c" after a number is a temperature only with a decimal; a lone "c" is too ambiguous otherwise.
_AMBIGUOUS_FORMS = {("c",), ("cc",), ("tab",), ("pill",), ("patch",), ("spray",), ("drop",)}


def unit_at(words: list[str], i: int) -> tuple[str, int] | None:
    """(canonical unit, index one past it) for the unit starting at words[i], else None."""
    if i >= len(words):
        return None
    for form, canonical in _FORMS.get(words[i], ()):
        if tuple(words[i : i + len(form)]) == form and form not in _AMBIGUOUS_FORMS:
            return canonical, i + len(form)
    return None


def canonical_unit(text: str | None) -> str | None:
    """A recorded unit ("mmol/mol", "mg/dL", "%") in its canonical form, None when unknown."""
    if not text:
        return None
    words = [t.lower for t in tokenize(text)]
    found = unit_at(words, 0)
    if found and found[1] == len(words):
        return found[0]
    return None


def same_amount(a: Decimal, a_unit: str | None, b: Decimal, b_unit: str | None) -> bool:
    """Whether two amounts are equal, converting mass and volume units. A dose said without its
    unit ("atorvastatin forty") agrees with the same number in any unit."""
    if a_unit == b_unit or a_unit is None or b_unit is None:
        return a == b
    if a_unit in MASS_MG and b_unit in MASS_MG:
        return a * MASS_MG[a_unit] == b * MASS_MG[b_unit]
    if a_unit in VOLUME_ML and b_unit in VOLUME_ML:
        return a * VOLUME_ML[a_unit] == b * VOLUME_ML[b_unit]
    return False


def convert_lab(test: str, value: Decimal, unit: str | None, to_unit: str | None) -> Decimal | None:
    """`value` in `unit` expressed in `to_unit` for a test whose two unit systems are both used."""
    if unit == to_unit:
        return value
    key = (test.lower(), unit, to_unit)
    if key[0] == "hba1c":
        if (unit, to_unit) == ("%", "mmol/mol"):
            return (Decimal("10.929") * (value - Decimal("2.15"))).quantize(Decimal(1))
        if (unit, to_unit) == ("mmol/mol", "%"):
            return (value / Decimal("10.929") + Decimal("2.15")).quantize(Decimal("0.1"))
    if key[0] == "glucose":
        if (unit, to_unit) == ("mg/dL", "mmol/L"):
            return (value / Decimal("18.016")).quantize(Decimal("0.1"))
        if (unit, to_unit) == ("mmol/L", "mg/dL"):
            return (value * Decimal("18.016")).quantize(Decimal(1))
    if key[0] == "creatinine":
        if (unit, to_unit) == ("mg/dL", "umol/L"):
            return (value * Decimal("88.42")).quantize(Decimal(1))
        if (unit, to_unit) == ("umol/L", "mg/dL"):
            return (value / Decimal("88.42")).quantize(Decimal("0.01"))
    return None
