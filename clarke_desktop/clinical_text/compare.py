"""Whether two values of the same test agree: blood pressures as pairs, units converted, HbA1c's
unit inferred from its size when it was said without one."""

from __future__ import annotations

from decimal import Decimal

from clarke_desktop.clinical_text.reader import Quantity
from clarke_desktop.clinical_text.units import convert_lab

# Rounding of converted values: a value reported in the other unit system is compared to this.
_TOLERANCE = {"mmol/mol": Decimal(1), "%": Decimal("0.1"), "mmol/L": Decimal("0.1"), "mg/dL": Decimal(2),
              "umol/L": Decimal(1)}  # fmt: skip


def inferred_unit(test: str, value: Decimal) -> str | None:
    """HbA1c is often said without a unit: above 20 it is mmol/mol, below it %."""
    if test == "HbA1c":
        return "mmol/mol" if value > 20 else "%"
    return None


def comparable(test: str, value: Quantity, other_unit: str | None) -> bool:
    """Whether `value` can be compared with a value in `other_unit` (same unit or convertible)."""
    unit = value.unit or inferred_unit(test, value.value)
    if unit is None or other_unit is None or unit == other_unit:
        return True
    return convert_lab(test, value.value, unit, other_unit) is not None


def same_value(
    test: str, value: Quantity, other: Decimal, other_over: Decimal | None, other_unit: str | None
) -> bool:
    if value.over is not None or other_over is not None:
        return value.value == other and value.over == other_over
    unit = value.unit or inferred_unit(test, value.value)
    other_unit = other_unit or inferred_unit(test, other)
    if unit and other_unit and unit != other_unit:
        converted = convert_lab(test, other, other_unit, unit)
        return converted is not None and abs(converted - value.value) <= _TOLERANCE.get(unit, Decimal(0))
    return value.value == other
