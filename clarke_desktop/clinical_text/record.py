"""The record's facts read the same way as speech: each medicine's canonical drug with its dose and
frequency, each allergy's drug or class, each result's canonical test with its values and units,
each recorded date. Built once per patient context and shared by the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from clarke_desktop.clinical_text import vocabulary
from clarke_desktop.clinical_text.frequency import Frequency
from clarke_desktop.clinical_text.labs import canonical_test
from clarke_desktop.clinical_text.reader import Quantity, read
from clarke_desktop.clinical_text.units import MASS_MG, canonical_unit
from clarke_desktop.schemas import Allergy, LabResult, Medication, PatientContext, SourceRef


@dataclass(slots=True)
class RecordedMedicine:
    medication: Medication
    canonical: str | None
    doses: list[Quantity]  # the prescribed dose ("1 g"), not the product's strength
    strengths: list[Quantity]  # "500mg" of "Metformin 500mg tablets"
    frequencies: list[Frequency]


@dataclass(slots=True)
class RecordedAllergy:
    allergy: Allergy
    canonical: str | None  # a drug, a class display name, or None (latex, nuts)
    is_class: bool
    no_known: bool  # "No known drug allergy"

    def covers(self, drug: str) -> bool:
        """Whether this allergy applies to `drug` (the same drug, or a member of its class)."""
        if self.canonical is None or self.no_known:
            return False
        if self.canonical == drug:
            return True
        if self.is_class:
            return drug in vocabulary.class_members(self.canonical)
        return False

    def cross_class(self, drug: str) -> str | None:
        """The class shared by the allergen and `drug` when they differ ("penicillins")."""
        if self.canonical is None or self.no_known or self.canonical == drug:
            return None
        if self.is_class:
            return self.canonical if drug in vocabulary.class_members(self.canonical) else None
        shared = set(vocabulary.drug_classes(self.canonical)) & set(vocabulary.drug_classes(drug))
        return sorted(shared)[0] if shared else None


@dataclass(slots=True)
class RecordedValue:
    lab: LabResult
    test: str
    values: list[tuple[Decimal, Decimal | None, SourceRef, str, str]]  # value, over, source, date, text
    unit: str | None


@dataclass(slots=True)
class RecordFacts:
    context: PatientContext
    medicines: list[RecordedMedicine] = field(default_factory=list)
    allergies: list[RecordedAllergy] = field(default_factory=list)
    values: list[RecordedValue] = field(default_factory=list)
    dates: list[tuple[str, SourceRef, str]] = field(default_factory=list)  # iso, source, shown

    def medicine(self, canonical: str) -> list[RecordedMedicine]:
        return [m for m in self.medicines if m.canonical == canonical]

    def values_of(self, test: str) -> list[RecordedValue]:
        return [v for v in self.values if v.test == test]


def _numbers(text: str | None) -> list[tuple[Decimal, Decimal | None]]:
    if not text:
        return []
    reading = read(text)
    return [(q.value, q.over) for q in reading.quantities]


def _drug_in(text: str) -> tuple[str | None, bool]:
    """An allergy's substance: a class when it names one ("Penicillin" recorded means penicillins)."""
    found = vocabulary.class_named(text)
    if found:
        return found, True
    reading = read(text)
    for d in reading.drugs:
        return d.canonical, d.is_class
    found = vocabulary.class_named(text)
    return (found, True) if found else (None, False)


def no_known_allergy(substance: str) -> bool:
    """A recorded "No known drug allergy" (SNOMED 409137002 and the like) is a statement, not an allergen."""
    lowered = substance.lower().strip()
    return "no known" in lowered or lowered in {"nkda", "nka", "no allergies", "no drug allergies"}


def _medicine(med: Medication) -> RecordedMedicine:
    name = read(med.name)
    drugs = [d for d in name.drugs if not d.is_class]
    strengths = [q for q in name.quantities if q.unit in MASS_MG]
    doses: list[Quantity] = []
    frequencies: list[Frequency] = []
    for text in (med.dose, med.frequency, med.dosage_text):
        if text:
            reading = read(text)
            doses += [
                q for q in reading.quantities if q.unit in MASS_MG or q.unit in {"units", "mL", "puffs"}
            ]
            frequencies += reading.frequencies
            if not doses and strengths:  # "Take two tablets": the count times the strength
                for q in reading.quantities:
                    if q.unit in {"tablets", "capsules"}:
                        s = strengths[0]
                        doses.append(Quantity(q.value * s.value, s.unit, q.ti, q.tj))
    if not doses:
        doses = list(strengths)
    return RecordedMedicine(med, drugs[0].canonical if drugs else None, doses, strengths, frequencies)


def read_record(context: PatientContext) -> RecordFacts:
    facts = RecordFacts(context)
    for med in context.medications:
        facts.medicines.append(_medicine(med))
    for allergy in context.allergies:
        no_known = no_known_allergy(allergy.substance)
        canonical, is_class = (None, False) if no_known else _drug_in(allergy.substance)
        facts.allergies.append(RecordedAllergy(allergy, canonical, is_class, no_known))
    for lab in [*context.recent_labs, *context.vital_signs]:
        test = canonical_test(lab.name)
        values = [(v, o, lab.source, lab.date, lab.value) for v, o in _numbers(lab.value)]
        if lab.previous_value:
            source = lab.previous_source or lab.source
            values += [(v, o, source, lab.previous_date or "", lab.previous_value)
                       for v, o in _numbers(lab.previous_value)]  # fmt: skip
        facts.values.append(RecordedValue(lab, test, values, canonical_unit(lab.unit)))
        for day, source in ((lab.date, lab.source), (lab.previous_date, lab.previous_source or lab.source)):
            if day:
                facts.dates.append((day[:10], source, day[:10]))
    demo = context.demographics
    if demo.source and demo.date_of_birth:
        facts.dates.append((demo.date_of_birth[:10], demo.source, demo.date_of_birth[:10]))
    for problem in context.problem_list:
        if problem.onset:
            facts.dates.append((problem.onset[:10], problem.source, problem.onset[:10]))
    for report in context.recent_imaging:
        if report.date:
            facts.dates.append((report.date[:10], report.source, report.date[:10]))
    for encounter in context.recent_encounters:
        if encounter.date:
            facts.dates.append((encounter.date[:10], encounter.source, encounter.date[:10]))
    return facts
