"""The five hand-written demo patients (Clarke blueprint §8b), the clinician and the hospital.

Each patient is written as UK-style FHIR R4: NHS number, GP and practice, SNOMED problems, BNF
medication names with structured doses, LOINC results in UK units with reference ranges and an
earlier value so trends exist, imaging reports with conclusions, encounters and the previous
clinic letter as a DocumentReference. Alongside each record the builder writes the gold facts a
correct PatientContext must contain (tests/data/gold_facts/pt-00N.json).

Dates are fixed (not relative to "today") so the gold facts stay exact; the latest results sit
in October/November 2026.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dataset_common import (
    GMC_SYSTEM,
    HOSPITAL_NUMBER_SYSTEM,
    LOINC,
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    SNOMED,
    b64,
    concept,
    london_dt,
    make_nhs_number,
    qty,
)

OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLIN = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
ROUTE_ORAL = concept(SNOMED, "26643006", "Oral route", "Oral")
ROUTE_INHALED = concept(SNOMED, "447694001", "Respiratory tract route", "Inhaled")
ROUTE_SUBLINGUAL = concept(SNOMED, "37839007", "Sublingual route", "Sublingual")

HOSPITAL_ID = "org-northbridge"
CLINICIAN_ID = "dr-sarah-chen"
CLINICIAN_ROLE_ID = "role-sarah-chen"
DATASET_TAG = {"system": "https://clarke.example/fhir/tags", "code": "clarke-demo"}


# --- Organisations and clinicians -------------------------------------------------------------


def _org(oid: str, name: str, ods: str, line: str, city: str, postcode: str, phone: str, kind: str) -> dict:
    org_type = {
        "prov": concept(
            "http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider"
        ),
    }["prov"]
    return {
        "resourceType": "Organization",
        "id": oid,
        "meta": {"tag": [DATASET_TAG]},
        "identifier": [{"system": ODS_SYSTEM, "value": ods}],
        "active": True,
        "type": [org_type | {"text": kind}],
        "name": name,
        "telecom": [{"system": "phone", "value": phone, "use": "work"}],
        "address": [{"line": [line], "city": city, "postalCode": postcode, "country": "GB"}],
    }


def _practitioner(pid: str, prefix: str, given: str, family: str, gmc: str, gender: str, qual: str) -> dict:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "meta": {"tag": [DATASET_TAG]},
        "identifier": [{"system": GMC_SYSTEM, "value": gmc}],
        "active": True,
        "name": [{"use": "official", "prefix": [prefix], "given": [given], "family": family}],
        "gender": gender,
        "qualification": [{"code": {"text": qual}}],
    }


HOSPITAL = _org(
    HOSPITAL_ID,
    "Northbridge General Hospital",
    "RNB01",
    "Northbridge Road",
    "London",
    "SE1 7NB",
    "020 7946 0100",
    "NHS hospital",
)

GP_PRACTICES = {
    "riverside": _org(
        "org-gp-riverside",
        "Riverside Medical Centre",
        "G85901",
        "40 Riverside Walk",
        "London",
        "SE1 2RM",
        "020 7946 0231",
        "GP practice",
    ),
    "elmwood": _org(
        "org-gp-elmwood",
        "Elmwood Surgery",
        "G85902",
        "3 Elmwood Road",
        "London",
        "SE5 8EW",
        "020 7946 0472",
        "GP practice",
    ),
    "parkside": _org(
        "org-gp-parkside",
        "Parkside Health Centre",
        "G85903",
        "118 Park Street",
        "London",
        "SE16 3PH",
        "020 7946 0655",
        "GP practice",
    ),
}

GPS = {
    "riverside": _practitioner(
        "gp-rajesh-patel", "Dr", "Rajesh", "Patel", "4123456", "male", "General Practitioner"
    ),
    "elmwood": _practitioner(
        "gp-anna-hughes", "Dr", "Anna", "Hughes", "4234567", "female", "General Practitioner"
    ),
    "parkside": _practitioner(
        "gp-olu-adeyemi", "Dr", "Oluwaseun", "Adeyemi", "4345678", "male", "General Practitioner"
    ),
}

CLINICIAN = _practitioner(
    CLINICIAN_ID,
    "Dr",
    "Sarah",
    "Chen",
    "6012345",
    "female",
    "Consultant Physician, General Internal Medicine",
)
CLINICIAN_ROLE = {
    "resourceType": "PractitionerRole",
    "id": CLINICIAN_ROLE_ID,
    "meta": {"tag": [DATASET_TAG]},
    "active": True,
    "practitioner": {"reference": f"Practitioner/{CLINICIAN_ID}", "display": "Dr Sarah Chen"},
    "organization": {"reference": f"Organization/{HOSPITAL_ID}", "display": HOSPITAL["name"]},
    "code": [{"text": "Consultant Physician"}],
    "specialty": [concept(SNOMED, "419192003", "Internal medicine", "General Internal Medicine")],
}
# Other hospital doctors who wrote earlier letters and reports.
COLLEAGUES = {
    "cardiology": _practitioner(
        "dr-james-okonkwo", "Dr", "James", "Okonkwo", "6123456", "male", "Consultant Cardiologist"
    ),
    "respiratory": _practitioner(
        "dr-helen-marsh", "Dr", "Helen", "Marsh", "6234567", "female", "Consultant Respiratory Physician"
    ),
    "radiology": _practitioner(
        "dr-tom-fletcher", "Dr", "Tom", "Fletcher", "6345678", "male", "Consultant Radiologist"
    ),
}


def ref(resource: dict, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource['resourceType']}/{resource['id']}"}
    if display:
        out["display"] = display
    return out


def person_name(p: dict) -> str:
    n = p["name"][0]
    return " ".join([*n.get("prefix", []), *n.get("given", []), n["family"]])


# --- One patient's record ----------------------------------------------------------------------


@dataclass
class Record:
    pid: str
    patient: dict
    gp: dict
    practice: dict
    resources: list[dict] = field(default_factory=list)
    gold: dict[str, Any] = field(default_factory=dict)
    _n: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gold.update(
            problem_list=[],
            medications=[],
            allergies=[],
            recent_imaging=[],
            recent_encounters=[],
            excluded=[],
        )

    def _id(self, kind: str, slug: str) -> str:
        return f"{kind}-{self.pid}-{slug}"

    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}", "display": person_name(self.patient)}

    def add(self, r: dict) -> dict:
        r.setdefault("meta", {"tag": [DATASET_TAG]})
        self.resources.append(r)
        return r

    @staticmethod
    def source(r: dict) -> dict[str, str]:
        return {"resource_type": r["resourceType"], "id": r["id"]}

    # Encounters ------------------------------------------------------------------------------
    def encounter(
        self,
        slug: str,
        start: str,
        end: str | None,
        cls: str,
        type_code: tuple[str, str],
        reason: str,
        provider: dict,
        practitioner: dict,
        hhmm: str = "10:00",
        end_hhmm: str = "10:30",
    ) -> dict:
        class_display = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}[cls]
        enc = self.add(
            {
                "resourceType": "Encounter",
                "id": self._id("enc", slug),
                "status": "finished",
                "class": {"system": ACT_CODE, "code": cls, "display": class_display},
                "type": [concept(SNOMED, type_code[0], type_code[1])],
                "subject": self.subject(),
                "participant": [{"individual": ref(practitioner, person_name(practitioner))}],
                "period": {"start": london_dt(start, hhmm), "end": london_dt(end or start, end_hhmm)},
                "reasonCode": [{"text": reason}],
                "serviceProvider": ref(provider, provider["name"]),
            }
        )
        self.gold["recent_encounters"].append(
            {"date": start, "type": type_code[1], "reason": reason, "source": self.source(enc)}
        )
        return enc

    # Problems --------------------------------------------------------------------------------
    def condition(
        self,
        slug: str,
        code: str,
        display: str,
        text: str,
        onset: str,
        status: str = "active",
        abatement: str | None = None,
        category: str = "problem-list-item",
    ) -> dict:
        r: dict[str, Any] = {
            "resourceType": "Condition",
            "id": self._id("cond", slug),
            "clinicalStatus": {"coding": [{"system": COND_CLIN, "code": status}]},
            "verificationStatus": {"coding": [{"system": COND_VER, "code": "confirmed"}]},
            "category": [{"coding": [{"system": COND_CAT, "code": category}]}],
            "code": concept(SNOMED, code, display, text),
            "subject": self.subject(),
            "onsetDateTime": onset,
            "recordedDate": onset,
        }
        if abatement:
            r["abatementDateTime"] = abatement
        self.add(r)
        if status == "active":
            self.gold["problem_list"].append(
                {"name": text, "code": code, "onset": onset, "status": status, "source": self.source(r)}
            )
        else:
            self.gold["excluded"].append({"source": self.source(r), "why": f"condition {status}: {text}"})
        return r

    # Medications -----------------------------------------------------------------------------
    def medication(
        self,
        slug: str,
        name: str,
        dose_value: float,
        dose_unit: str,
        dose_ucum: str,
        frequency: str,
        timing: dict,
        route: dict,
        text: str,
        authored: str,
        status: str = "active",
        reason: str | None = None,
        prn: bool = False,
        dose_text: str | None = None,
    ) -> dict:
        dosage: dict[str, Any] = {
            "sequence": 1,
            "text": text,
            "timing": {"repeat": timing} if timing else {"code": {"text": frequency}},
            "asNeededBoolean": prn,
            "route": route,
            "doseAndRate": [{"doseQuantity": qty(dose_value, dose_unit, dose_ucum)}],
        }
        r: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": self._id("med", slug),
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {"text": name},
            "subject": self.subject(),
            "authoredOn": authored,
            "requester": ref(self.gp, person_name(self.gp)),
            "dosageInstruction": [dosage],
        }
        if reason:
            r["reasonCode"] = [{"text": reason}]
        self.add(r)
        dose = dose_text or f"{_num(dose_value)} {dose_unit}"
        if status == "active":
            self.gold["medications"].append(
                {
                    "name": name,
                    "dose": dose,
                    "frequency": frequency,
                    "route": route["text"],
                    "dosage_text": text,
                    "status": status,
                    "source": self.source(r),
                }
            )
        else:
            self.gold["excluded"].append(
                {"source": self.source(r), "why": f"medication {status}: {name} {dose}"}
            )
        return r

    # Allergies -------------------------------------------------------------------------------
    def allergy(
        self,
        slug: str,
        code: str,
        display: str,
        text: str,
        reaction: tuple[str, str] | None,
        severity: str | None,
        criticality: str | None,
        category: str,
        recorded: str,
        kind: str = "allergy",
    ) -> dict:
        r: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "id": self._id("allergy", slug),
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLIN, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": ALLERGY_VER, "code": "confirmed"}]},
            "type": kind,
            "category": [category],
            "code": concept(SNOMED, code, display, text),
            "patient": self.subject(),
            "recordedDate": recorded,
        }
        if criticality:
            r["criticality"] = criticality
        if reaction:
            rx: dict[str, Any] = {"manifestation": [concept(SNOMED, reaction[0], reaction[1])]}
            if severity:
                rx["severity"] = severity
            r["reaction"] = [rx]
        self.add(r)
        self.gold["allergies"].append(
            {
                "substance": text,
                "reaction": reaction[1] if reaction else None,
                "severity": severity,
                "criticality": criticality,
                "source": self.source(r),
            }
        )
        return r

    # Observations ----------------------------------------------------------------------------
    def obs(
        self,
        slug: str,
        when: str,
        loinc: str,
        display: str,
        text: str,
        value: float,
        unit: str,
        ucum: str,
        low: float | None = None,
        high: float | None = None,
        range_text: str | None = None,
        category: str = "laboratory",
        hhmm: str = "09:10",
        comparator: str | None = None,
        interpretation: str | None = None,
    ) -> dict:
        vq = qty(value, unit, ucum)
        if comparator:
            vq["comparator"] = comparator
        r: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self._id("obs", f"{slug}-{when}"),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
            "code": concept(LOINC, loinc, display, text),
            "subject": self.subject(),
            "effectiveDateTime": london_dt(when, hhmm),
            "issued": london_dt(when, "15:30"),
            "valueQuantity": vq,
        }
        if low is not None or high is not None or range_text:
            rr: dict[str, Any] = {}
            if low is not None:
                rr["low"] = qty(low, unit, ucum)
            if high is not None:
                rr["high"] = qty(high, unit, ucum)
            rr["text"] = range_text or f"{_num(low)}-{_num(high)} {unit}"
            r["referenceRange"] = [rr]
        if interpretation:
            r["interpretation"] = [
                concept(
                    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    interpretation,
                    {"H": "High", "L": "Low", "N": "Normal"}[interpretation],
                )
            ]
        return self.add(r)

    def bp(self, when: str, systolic: int, diastolic: int, hhmm: str = "10:05") -> dict:
        return self.add(
            {
                "resourceType": "Observation",
                "id": self._id("obs", f"bp-{when}"),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}],
                "code": concept(
                    LOINC, "85354-9", "Blood pressure panel with all children optional", "Blood pressure"
                ),
                "subject": self.subject(),
                "effectiveDateTime": london_dt(when, hhmm),
                "component": [
                    {
                        "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                        "valueQuantity": qty(systolic, "mmHg", "mm[Hg]"),
                    },
                    {
                        "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                        "valueQuantity": qty(diastolic, "mmHg", "mm[Hg]"),
                    },
                ],
            }
        )

    # Reports ---------------------------------------------------------------------------------
    def report(
        self,
        slug: str,
        when: str,
        category: tuple[str, str],
        loinc: str,
        display: str,
        text: str,
        conclusion: str,
        performer: dict,
        results: list[dict] | None = None,
        hhmm: str = "11:00",
    ) -> dict:
        r: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "id": self._id("dr", slug),
            "status": "final",
            "category": [concept(V2_0074, category[0], category[1])],
            "code": concept(LOINC, loinc, display, text),
            "subject": self.subject(),
            "effectiveDateTime": london_dt(when, hhmm),
            "issued": london_dt(when, "16:00"),
            "performer": [ref(performer, person_name(performer))],
            "conclusion": conclusion,
        }
        if results:
            r["result"] = [ref(o) for o in results]
        self.add(r)
        if category[0] != "LAB":
            self.gold["recent_imaging"].append(
                {"type": text, "date": when, "summary": conclusion, "source": self.source(r)}
            )
        return r

    # Letters ---------------------------------------------------------------------------------
    def letter(self, slug: str, when: str, author: dict, encounter: dict, title: str, body: str) -> dict:
        r = self.add(
            {
                "resourceType": "DocumentReference",
                "id": self._id("doc", slug),
                "status": "current",
                "docStatus": "final",
                "type": concept(LOINC, "11488-4", "Consult note", "Outpatient clinic letter"),
                "category": [concept(SNOMED, "371531000", "Report of clinical encounter", "Clinic letter")],
                "subject": self.subject(),
                "date": london_dt(when, "17:00"),
                "author": [ref(author, person_name(author))],
                "custodian": ref(HOSPITAL, HOSPITAL["name"]),
                "description": title,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": "en-GB",
                            "data": b64(body),
                            "title": title,
                            "creation": london_dt(when, "17:00"),
                        }
                    }
                ],
                "context": {"encounter": [ref(encounter)]},
            }
        )
        self.gold["last_letter"] = {"date": when, "title": title, "source": self.source(r)}
        return r

    # Gold facts ------------------------------------------------------------------------------
    def finish_gold(self, letter_must_mention: list[str]) -> dict:
        """Latest value per test (non vital-sign Observations) with its previous value."""
        labs: dict[str, list[dict]] = {}
        vitals: dict[str, list[dict]] = {}
        for r in self.resources:
            if r["resourceType"] != "Observation":
                continue
            cat = r["category"][0]["coding"][0]["code"]
            (vitals if cat == "vital-signs" else labs).setdefault(r["code"]["coding"][0]["code"], []).append(
                r
            )
        self.gold["recent_labs"] = [_lab_fact(sorted(v, key=_when)) for v in labs.values()]
        self.gold["recent_labs"].sort(key=lambda f: (f["date"], f["name"]), reverse=True)
        self.gold["vital_signs"] = [_lab_fact(sorted(v, key=_when)) for v in vitals.values()]
        self.gold["recent_encounters"].sort(key=lambda e: e["date"], reverse=True)
        self.gold["recent_imaging"].sort(key=lambda e: e["date"], reverse=True)
        self.gold["last_letter"]["must_mention"] = letter_must_mention
        p = self.patient
        nhs = next(i["value"] for i in p["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)
        demographics = {
            "name": person_name(p),
            "date_of_birth": p["birthDate"],
            "nhs_number": nhs,
            "sex": p["gender"],
            "gp_name": person_name(self.gp),
            "gp_practice": self.practice["name"],
            "source": self.source(p),
        }
        return {
            "patient_id": self.pid,
            "rules": GOLD_RULES,
            "demographics": demographics,
            **{k: self.gold[k] for k in GOLD_ORDER},
        }


GOLD_ORDER = [
    "problem_list",
    "medications",
    "allergies",
    "recent_labs",
    "vital_signs",
    "recent_imaging",
    "recent_encounters",
    "last_letter",
    "excluded",
]
GOLD_RULES = {
    "problem_list": "every Condition with clinicalStatus active (resolved/inactive ones are in `excluded`)",
    "medications": "every MedicationRequest with status active; dose and frequency as prescribed",
    "allergies": "every active AllergyIntolerance, including a recorded 'no known drug allergy'",
    "recent_labs": "latest Observation per LOINC code (all categories but vital-signs), with the "
    "one before it as previous_value/previous_date; trend compares the two",
    "vital_signs": "latest vital-sign Observation per code, with the one before it",
    "recent_imaging": "every non-laboratory DiagnosticReport with its conclusion",
    "recent_encounters": "every Encounter, newest first",
    "last_letter": "the newest DocumentReference; must_mention: phrases its text contains",
    "excluded": "resources a correct context must NOT present as current (stopped, resolved)",
}


def _when(r: dict) -> str:
    return r["effectiveDateTime"]


def _num(v: float | None) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() else str(v)


def _value_text(r: dict) -> tuple[str, str]:
    if "component" in r:
        s, d = (c["valueQuantity"] for c in r["component"])
        return f"{_num(s['value'])}/{_num(d['value'])}", s["unit"]
    vq = r["valueQuantity"]
    return vq.get("comparator", "") + _num(vq["value"]), vq["unit"]


def _scalar(r: dict) -> float:
    if "component" in r:
        return float(r["component"][0]["valueQuantity"]["value"])
    return float(r["valueQuantity"]["value"])


def _lab_fact(series: list[dict]) -> dict:
    latest = series[-1]
    value, unit = _value_text(latest)
    fact: dict[str, Any] = {
        "name": latest["code"]["text"],
        "code": latest["code"]["coding"][0]["code"],
        "value": value,
        "unit": unit,
        "date": latest["effectiveDateTime"][:10],
        "reference_range": latest.get("referenceRange", [{}])[0].get("text"),
        "previous_value": None,
        "previous_date": None,
        "trend": None,
        "source": Record.source(latest),
        "previous_source": None,
    }
    if len(series) > 1:
        prev = series[-2]
        fact["previous_value"] = _value_text(prev)[0]
        fact["previous_date"] = prev["effectiveDateTime"][:10]
        fact["previous_source"] = Record.source(prev)
        a, b = _scalar(prev), _scalar(latest)
        fact["trend"] = "rising" if b > a else "falling" if b < a else "stable"
    return fact


def _patient(
    pid: str,
    serial: int,
    hosp_no: str,
    prefix: str,
    given: str,
    family: str,
    gender: str,
    birth: str,
    line: str,
    city: str,
    postcode: str,
    phone: str,
    gp_key: str,
    marital: tuple[str, str],
) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"tag": [DATASET_TAG]},
        "identifier": [
            {"system": NHS_NUMBER_SYSTEM, "value": make_nhs_number(serial)},
            {
                "type": concept(
                    "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "MR",
                    "Medical record number",
                    "Hospital number",
                ),
                "system": HOSPITAL_NUMBER_SYSTEM,
                "value": hosp_no,
            },
        ],
        "active": True,
        "name": [{"use": "official", "prefix": [prefix], "given": [given], "family": family}],
        "telecom": [{"system": "phone", "value": phone, "use": "home"}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"use": "home", "line": [line], "city": city, "postalCode": postcode, "country": "GB"}],
        "maritalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", marital[0], marital[1]
        ),
        "communication": [
            {"language": concept("urn:ietf:bcp:47", "en-GB", "English (United Kingdom)"), "preferred": True}
        ],
        "generalPractitioner": [
            ref(GPS[gp_key], person_name(GPS[gp_key])),
            ref(GP_PRACTICES[gp_key], GP_PRACTICES[gp_key]["name"]),
        ],
        "managingOrganization": ref(HOSPITAL, HOSPITAL["name"]),
    }


DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}
BD = {"frequency": 2, "period": 1, "periodUnit": "d"}
NIGHT = {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}
MORNING = {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]}
QDS_PRN = {"frequency": 4, "period": 1, "periodUnit": "d"}


# --- pt-001 Mrs Margaret Thompson ----------------------------------------------------------------


def thompson() -> Record:
    rec = Record(
        "pt-001",
        _patient(
            "pt-001",
            1001,
            "RNB1000001",
            "Mrs",
            "Margaret",
            "Thompson",
            "female",
            "1959-03-14",
            "12 Oak Lane",
            "London",
            "SE1 4AB",
            "020 7946 0812",
            "riverside",
            ("M", "Married"),
        ),
        GPS["riverside"],
        GP_PRACTICES["riverside"],
    )
    rec.add(rec.patient)
    gp, practice = rec.gp, rec.practice
    rec.encounter(
        "2025-11-17",
        "2025-11-17",
        None,
        "AMB",
        ("185389009", "Follow-up visit"),
        "Type 2 diabetes review",
        HOSPITAL,
        CLINICIAN,
        "14:00",
        "14:20",
    )
    e2 = rec.encounter(
        "2026-05-18",
        "2026-05-18",
        None,
        "AMB",
        ("185389009", "Follow-up visit"),
        "Type 2 diabetes review",
        HOSPITAL,
        CLINICIAN,
        "14:00",
        "14:20",
    )
    rec.encounter(
        "2026-11-02",
        "2026-11-02",
        None,
        "AMB",
        ("185347001", "Encounter for problem"),
        "Annual diabetes bloods",
        practice,
        gp,
        "09:00",
        "09:10",
    )
    rec.condition("t2dm", "44054006", "Type 2 diabetes mellitus", "Type 2 diabetes mellitus", "2019-06-01")
    rec.condition("htn", "59621000", "Essential hypertension", "Essential hypertension", "2016-04-11")
    rec.condition(
        "ckd3a",
        "700378005",
        "Chronic kidney disease stage 3A",
        "Chronic kidney disease stage 3a",
        "2026-05-18",
    )
    rec.condition(
        "oa-knee", "239873007", "Osteoarthritis of knee", "Osteoarthritis of right knee", "2018-09-03"
    )
    rec.condition(
        "cellulitis",
        "128045006",
        "Cellulitis",
        "Cellulitis of left lower leg",
        "2023-02-06",
        status="resolved",
        abatement="2023-02-20",
    )
    rec.medication(
        "metformin",
        "Metformin 500mg tablets",
        1,
        "g",
        "g",
        "twice daily",
        BD,
        ROUTE_ORAL,
        "Take two tablets (1 g) twice a day with meals",
        "2019-09-02",
        reason="Type 2 diabetes mellitus",
    )
    rec.medication(
        "ramipril",
        "Ramipril 5mg capsules",
        5,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one capsule (5 mg) once a day",
        "2016-05-09",
        reason="Essential hypertension",
    )
    rec.medication(
        "atorvastatin",
        "Atorvastatin 20mg tablets",
        20,
        "mg",
        "mg",
        "once daily at night",
        NIGHT,
        ROUTE_ORAL,
        "Take one tablet (20 mg) at night",
        "2019-09-02",
        reason="Primary prevention of cardiovascular disease",
    )
    rec.medication(
        "paracetamol",
        "Paracetamol 500mg tablets",
        1,
        "g",
        "g",
        "up to four times daily when required",
        QDS_PRN,
        ROUTE_ORAL,
        "Take two tablets (1 g) up to four times a day when required for knee pain",
        "2018-09-03",
        prn=True,
    )
    rec.medication(
        "amlodipine",
        "Amlodipine 5mg tablets",
        5,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (5 mg) once a day",
        "2017-03-13",
        status="stopped",
        reason="Stopped 2024: ankle swelling",
    )
    rec.allergy(
        "penicillin",
        "764146007",
        "Penicillin",
        "Penicillin",
        ("39579001", "Anaphylaxis"),
        "severe",
        "high",
        "medication",
        "1998-07-21",
    )
    # Diabetes and renal results: HbA1c 46 -> 48 -> 55; eGFR 63 -> 58 -> 52 (CKD-EPI 2021).
    for when, a1c, egfr, creat, k, chol in [
        ("2025-11-10", 46, 63, 85, 4.3, 4.8),
        ("2026-05-11", 48, 58, 93, 4.4, 4.5),
        ("2026-11-02", 55, 52, 101, 4.6, 4.2),
    ]:
        rec.obs(
            "hba1c",
            when,
            "59261-8",
            "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
            "HbA1c",
            a1c,
            "mmol/mol",
            "mmol/mol",
            20,
            41,
            "20-41 mmol/mol (non-diabetic)",
            interpretation="H" if a1c > 41 else None,
        )
        rec.obs(
            "egfr",
            when,
            "62238-1",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
            "Creatinine-based formula (CKD-EPI)",
            "eGFR",
            egfr,
            "mL/min/1.73m2",
            "mL/min/{1.73_m2}",
            90,
            None,
            ">90 mL/min/1.73m2",
            interpretation="L",
        )
        rec.obs(
            "creatinine",
            when,
            "14682-9",
            "Creatinine [Moles/volume] in Serum or Plasma",
            "Creatinine",
            creat,
            "µmol/L",
            "umol/L",
            45,
            84,
            "45-84 µmol/L",
            interpretation="H" if creat > 84 else None,
        )
        rec.obs(
            "potassium",
            when,
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "Potassium",
            k,
            "mmol/L",
            "mmol/L",
            3.5,
            5.3,
            "3.5-5.3 mmol/L",
        )
        rec.obs(
            "cholesterol",
            when,
            "14647-2",
            "Cholesterol [Moles/volume] in Serum or Plasma",
            "Total cholesterol",
            chol,
            "mmol/L",
            "mmol/L",
            None,
            5.0,
            "<5.0 mmol/L",
        )
    rec.bp("2025-11-17", 138, 82, "14:05")
    rec.bp("2026-05-18", 136, 80, "14:05")
    rec.obs(
        "weight",
        "2025-11-17",
        "29463-7",
        "Body weight",
        "Weight",
        79.5,
        "kg",
        "kg",
        category="vital-signs",
        hhmm="14:03",
    )
    rec.obs(
        "weight",
        "2026-05-18",
        "29463-7",
        "Body weight",
        "Weight",
        81.2,
        "kg",
        "kg",
        category="vital-signs",
        hhmm="14:03",
    )
    rec.letter(
        "2026-05-18",
        "2026-05-18",
        CLINICIAN,
        e2,
        "Diabetes clinic letter 18/05/2026",
        THOMPSON_LETTER,
    )
    return rec


THOMPSON_LETTER = """Northbridge General Hospital - General Medical Outpatients
Northbridge Road, London SE1 7NB

18 May 2026

Dr R Patel
Riverside Medical Centre
40 Riverside Walk, London SE1 2RM

Dear Dr Patel,

Re: Mrs Margaret Thompson, DOB 14/03/1959, NHS No. {nhs}

Diagnoses:
1. Type 2 diabetes mellitus (2019)
2. Essential hypertension
3. Chronic kidney disease stage 3a (new)
4. Osteoarthritis of the right knee

Medications: metformin 1 g twice daily, ramipril 5 mg once daily, atorvastatin 20 mg at night,
paracetamol 1 g up to four times daily when required.
Allergy: penicillin (anaphylaxis).

I reviewed Mrs Thompson in clinic today. She feels well and is walking most days despite her
knee. Her HbA1c is 48 mmol/mol (46 mmol/mol in November 2025), so her diabetes remains
reasonably controlled on metformin alone. Her eGFR has fallen from 63 to 58 mL/min/1.73m2,
creatinine 93 µmol/L, which puts her in CKD stage 3a; potassium is 4.4 mmol/L. Blood pressure
today 136/80 mmHg. Weight 81.2 kg, up 1.7 kg since November.

Plan:
- Continue metformin 1 g twice daily; the dose is appropriate while eGFR stays above 45.
- If HbA1c rises above 53 mmol/mol at the next check, we will add a second agent; given her
  renal function, gliclazide would be my first choice.
- Please repeat HbA1c, renal function and urine albumin:creatinine ratio in six months.
- Dietary advice given; she would like a referral to a structured education course.

Review in clinic in six months with the results.

Yours sincerely,

Dr Sarah Chen
Consultant Physician, General Internal Medicine
"""


# --- pt-002 Mr Emeka Okafor ----------------------------------------------------------------------


def okafor() -> Record:
    rec = Record(
        "pt-002",
        _patient(
            "pt-002",
            2002,
            "RNB1000002",
            "Mr",
            "Emeka",
            "Okafor",
            "male",
            "1972-07-09",
            "27 Camberwell Grove",
            "London",
            "SE5 8JA",
            "020 7946 0934",
            "elmwood",
            ("M", "Married"),
        ),
        GPS["elmwood"],
        GP_PRACTICES["elmwood"],
    )
    rec.add(rec.patient)
    cardio = COLLEAGUES["cardiology"]
    rad = COLLEAGUES["radiology"]
    rec.encounter(
        "2026-08-28",
        "2026-08-28",
        None,
        "EMER",
        ("4525004", "Emergency department patient visit"),
        "Central chest pain on exertion",
        HOSPITAL,
        cardio,
        "08:40",
        "15:10",
    )
    e_racpc = rec.encounter(
        "2026-09-10",
        "2026-09-10",
        None,
        "AMB",
        ("185347001", "Encounter for problem"),
        "Rapid access chest pain clinic",
        HOSPITAL,
        cardio,
        "10:00",
        "10:40",
    )
    rec.encounter(
        "2026-10-27",
        "2026-10-27",
        None,
        "AMB",
        ("371883000", "Outpatient procedure"),
        "Day-case invasive coronary angiography",
        HOSPITAL,
        cardio,
        "08:00",
        "16:00",
    )
    rec.condition("chest-pain", "29857009", "Chest pain", "Chest pain on exertion", "2026-08-28")
    rec.condition("hyperlipidaemia", "55822004", "Hyperlipidemia", "Hyperlipidaemia", "2022-03-14")
    rec.condition(
        "gord",
        "235595009",
        "Gastroesophageal reflux disease",
        "Gastro-oesophageal reflux disease",
        "2020-01-20",
    )
    rec.medication(
        "aspirin",
        "Aspirin 75mg dispersible tablets",
        75,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (75 mg) once a day",
        "2026-09-10",
        reason="Suspected angina",
    )
    rec.medication(
        "atorvastatin",
        "Atorvastatin 40mg tablets",
        40,
        "mg",
        "mg",
        "once daily at night",
        NIGHT,
        ROUTE_ORAL,
        "Take one tablet (40 mg) at night",
        "2026-09-10",
        reason="Hyperlipidaemia",
    )
    rec.medication(
        "gtn",
        "Glyceryl trinitrate 400micrograms/dose pump sublingual spray",
        400,
        "micrograms",
        "ug",
        "when required",
        {},
        ROUTE_SUBLINGUAL,
        "Spray one or two doses under the tongue when required for chest pain; repeat after 5 minutes if "
        "needed",
        "2026-09-10",
        prn=True,
        dose_text="400 micrograms (1-2 sprays)",
    )
    rec.medication(
        "omeprazole",
        "Omeprazole 20mg gastro-resistant capsules",
        20,
        "mg",
        "mg",
        "once daily in the morning",
        MORNING,
        ROUTE_ORAL,
        "Take one capsule (20 mg) each morning",
        "2020-01-20",
        reason="Gastro-oesophageal reflux",
    )
    rec.allergy(
        "nkda",
        "409137002",
        "No known drug allergy",
        "No known drug allergy",
        None,
        None,
        None,
        "medication",
        "2026-08-28",
    )
    t0 = rec.obs(
        "troponin",
        "2026-08-28",
        "67151-1",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        "High-sensitivity troponin T",
        6,
        "ng/L",
        "ng/L",
        None,
        14,
        "<14 ng/L",
        hhmm="09:05",
    )
    t3 = rec.obs(
        "troponin",
        "2026-08-28",
        "67151-1",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        "High-sensitivity troponin T",
        7,
        "ng/L",
        "ng/L",
        None,
        14,
        "<14 ng/L",
        hhmm="12:10",
    )
    t3["id"] = t3["id"] + "-3h"  # two results on one day: keep the ids distinct
    for when, chol, ldl, a1c, creat, egfr in [
        ("2024-03-12", 5.8, 3.8, 38, 90, 86),
        ("2026-08-28", 6.1, 4.0, 39, 92, 84),
    ]:
        rec.obs(
            "cholesterol",
            when,
            "14647-2",
            "Cholesterol [Moles/volume] in Serum or Plasma",
            "Total cholesterol",
            chol,
            "mmol/L",
            "mmol/L",
            None,
            5.0,
            "<5.0 mmol/L",
            interpretation="H",
        )
        rec.obs(
            "ldl",
            when,
            "22748-8",
            "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
            "LDL cholesterol",
            ldl,
            "mmol/L",
            "mmol/L",
            None,
            3.0,
            "<3.0 mmol/L",
            interpretation="H",
        )
        rec.obs(
            "hba1c",
            when,
            "59261-8",
            "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
            "HbA1c",
            a1c,
            "mmol/mol",
            "mmol/mol",
            20,
            41,
            "20-41 mmol/mol (non-diabetic)",
        )
        rec.obs(
            "creatinine",
            when,
            "14682-9",
            "Creatinine [Moles/volume] in Serum or Plasma",
            "Creatinine",
            creat,
            "µmol/L",
            "umol/L",
            59,
            104,
            "59-104 µmol/L",
        )
        rec.obs(
            "egfr",
            when,
            "62238-1",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
            "Creatinine-based formula (CKD-EPI)",
            "eGFR",
            egfr,
            "mL/min/1.73m2",
            "mL/min/{1.73_m2}",
            90,
            None,
            ">90 mL/min/1.73m2",
        )
    rec.bp("2026-08-28", 152, 94, "08:50")
    rec.bp("2026-09-10", 150, 93, "10:05")
    rec.bp("2026-10-27", 148, 92, "08:15")
    rec.obs(
        "heart-rate",
        "2026-10-27",
        "8867-4",
        "Heart rate",
        "Heart rate",
        74,
        "beats/min",
        "/min",
        category="vital-signs",
        hhmm="08:15",
    )
    rec.report(
        "ecg-2026-08-28",
        "2026-08-28",
        ("EC", "Electrocardiac (e.g., EKG, EEC, Holter)"),
        "11524-6",
        "EKG study",
        "12-lead ECG",
        "Sinus rhythm 78 bpm. Normal axis. No acute ST-segment or T-wave changes.",
        cardio,
        hhmm="08:55",
    )
    rec.report(
        "cxr-2026-08-28",
        "2026-08-28",
        ("RAD", "Radiology"),
        "18748-4",
        "Diagnostic imaging study",
        "Chest X-ray",
        "Heart size normal. Lungs clear. No pneumothorax or effusion.",
        rad,
        hhmm="10:20",
    )
    rec.report(
        "troponin-2026-08-28",
        "2026-08-28",
        ("LAB", "Laboratory"),
        "67151-1",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        "Serial high-sensitivity troponin",
        "Troponin T 6 then 7 ng/L at 3 hours: myocardial infarction ruled out.",
        cardio,
        results=[t0, t3],
        hhmm="12:30",
    )
    rec.report(
        "angiogram-2026-10-27",
        "2026-10-27",
        ("CTH", "Cardiac Catheterization"),
        "18745-0",
        "Cardiac catheterization study",
        "Invasive coronary angiogram",
        "Right radial approach. Smooth, unobstructed coronary arteries with no significant coronary artery "
        "disease. Normal left ventricular function. No complications.",
        cardio,
        hhmm="11:30",
    )
    rec.letter(
        "2026-09-10",
        "2026-09-10",
        cardio,
        e_racpc,
        "Rapid access chest pain clinic letter 10/09/2026",
        OKAFOR_LETTER,
    )
    return rec


OKAFOR_LETTER = """Northbridge General Hospital - Cardiology
Northbridge Road, London SE1 7NB

10 September 2026

Dr A Hughes
Elmwood Surgery
3 Elmwood Road, London SE5 8EW

Dear Dr Hughes,

Re: Mr Emeka Okafor, DOB 09/07/1972, NHS No. {nhs}
Rapid access chest pain clinic

Mr Okafor attended the emergency department on 28 August with central chest tightness on walking
uphill, easing with rest. ECG showed sinus rhythm without ischaemic change and serial
high-sensitivity troponin T was 6 and 7 ng/L, so myocardial infarction was ruled out. Chest X-ray
was normal.

Today he describes two to three episodes a week of exertional tightness lasting a few minutes.
He is a non-smoker. His father had a myocardial infarction at 58. Total cholesterol 6.1 mmol/L,
LDL 4.0 mmol/L, HbA1c 39 mmol/mol. Blood pressure 150/93 mmHg, confirmed on repeat.

Impression: possible stable angina.

Plan:
- Invasive coronary angiography has been requested (day case).
- Started aspirin 75 mg once daily, atorvastatin 40 mg at night and a GTN spray when required.
- Continue omeprazole 20 mg each morning.
- His blood pressure is raised; please arrange ambulatory blood pressure monitoring.

He will be reviewed in the general medical clinic after the angiogram.

Yours sincerely,

Dr James Okonkwo
Consultant Cardiologist
"""


# --- pt-003 Ms Priya Patel -----------------------------------------------------------------------


def patel() -> Record:
    rec = Record(
        "pt-003",
        _patient(
            "pt-003",
            3003,
            "RNB1000003",
            "Ms",
            "Priya",
            "Patel",
            "female",
            "1998-05-21",
            "Flat 4, 61 Jamaica Road",
            "London",
            "SE16 4RT",
            "07700 900417",
            "parkside",
            ("S", "Never Married"),
        ),
        GPS["parkside"],
        GP_PRACTICES["parkside"],
    )
    rec.add(rec.patient)
    resp = COLLEAGUES["respiratory"]
    e_clinic = rec.encounter(
        "2025-11-17",
        "2025-11-17",
        None,
        "AMB",
        ("185389009", "Follow-up visit"),
        "Asthma review",
        HOSPITAL,
        resp,
        "11:00",
        "11:30",
    )
    rec.encounter(
        "2026-07-14",
        "2026-07-14",
        None,
        "EMER",
        ("4525004", "Emergency department patient visit"),
        "Asthma exacerbation",
        HOSPITAL,
        resp,
        "21:15",
        "23:50",
    )
    rec.encounter(
        "2026-11-02",
        "2026-11-02",
        None,
        "AMB",
        ("185347001", "Encounter for problem"),
        "Asthma symptoms, using reliever four times a week",
        rec.practice,
        rec.gp,
        "16:20",
        "16:35",
    )
    rec.condition("asthma", "195967001", "Asthma", "Asthma", "2008-04-02")
    rec.condition("rhinitis", "61582004", "Allergic rhinitis", "Allergic rhinitis", "2010-05-17")
    rec.condition(
        "eczema",
        "24079001",
        "Atopic dermatitis",
        "Atopic eczema",
        "2000-02-01",
        status="resolved",
        abatement="2012-06-01",
    )
    rec.medication(
        "salbutamol",
        "Salbutamol 100micrograms/dose inhaler CFC free",
        200,
        "micrograms",
        "ug",
        "when required",
        {},
        ROUTE_INHALED,
        "Inhale two puffs (200 micrograms) when required for breathlessness or wheeze",
        "2008-04-02",
        prn=True,
        dose_text="200 micrograms (2 puffs)",
    )
    rec.medication(
        "cetirizine",
        "Cetirizine 10mg tablets",
        10,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (10 mg) once a day",
        "2010-05-17",
        reason="Allergic rhinitis",
    )
    rec.medication(
        "beclometasone",
        "Clenil Modulite 100micrograms/dose inhaler",
        200,
        "micrograms",
        "ug",
        "twice daily",
        BD,
        ROUTE_INHALED,
        "Inhale two puffs (200 micrograms) twice a day",
        "2024-09-02",
        status="stopped",
        reason="Stopped by patient, February 2026",
    )
    rec.medication(
        "prednisolone",
        "Prednisolone 5mg tablets",
        40,
        "mg",
        "mg",
        "once daily for 5 days",
        MORNING,
        ROUTE_ORAL,
        "Take eight tablets (40 mg) each morning for 5 days",
        "2026-07-14",
        status="completed",
        reason="Asthma exacerbation",
    )
    rec.allergy(
        "ibuprofen",
        "387207008",
        "Ibuprofen",
        "Ibuprofen",
        ("4386001", "Bronchospasm"),
        "moderate",
        "high",
        "medication",
        "2016-10-03",
    )
    for when, pef, hhmm in [
        ("2025-11-17", 380, "11:10"),
        ("2026-07-14", 250, "21:30"),
        ("2026-11-02", 320, "16:25"),
    ]:
        rec.obs(
            "pef",
            when,
            "19935-6",
            "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
            "Peak expiratory flow",
            pef,
            "L/min",
            "L/min",
            360,
            None,
            "Predicted 450 L/min (80% of predicted = 360 L/min)",
            category="exam",
            hhmm=hhmm,
            interpretation="L" if pef < 360 else None,
        )
    rec.obs(
        "eosinophils",
        "2025-11-17",
        "26449-9",
        "Eosinophils [#/volume] in Blood",
        "Eosinophils",
        0.5,
        "10*9/L",
        "10*9/L",
        0.0,
        0.4,
        "0.0-0.4 10*9/L",
        interpretation="H",
    )
    rec.obs(
        "eosinophils",
        "2026-07-14",
        "26449-9",
        "Eosinophils [#/volume] in Blood",
        "Eosinophils",
        0.6,
        "10*9/L",
        "10*9/L",
        0.0,
        0.4,
        "0.0-0.4 10*9/L",
        hhmm="21:40",
        interpretation="H",
    )
    rec.obs(
        "spo2",
        "2026-07-14",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "Oxygen saturation",
        94,
        "%",
        "%",
        category="vital-signs",
        hhmm="21:20",
    )
    rec.obs(
        "spo2",
        "2026-11-02",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "Oxygen saturation",
        98,
        "%",
        "%",
        category="vital-signs",
        hhmm="16:24",
    )
    rec.report(
        "cxr-2026-07-14",
        "2026-07-14",
        ("RAD", "Radiology"),
        "18748-4",
        "Diagnostic imaging study",
        "Chest X-ray",
        "Hyperinflated lungs. No consolidation, pneumothorax or effusion.",
        COLLEAGUES["radiology"],
        hhmm="22:05",
    )
    rec.letter(
        "2025-11-17", "2025-11-17", resp, e_clinic, "Respiratory clinic letter 17/11/2025", PATEL_LETTER
    )
    return rec


PATEL_LETTER = """Northbridge General Hospital - Respiratory Medicine
Northbridge Road, London SE1 7NB

17 November 2025

Dr O Adeyemi
Parkside Health Centre
118 Park Street, London SE16 3PH

Dear Dr Adeyemi,

Re: Ms Priya Patel, DOB 21/05/1998, NHS No. {nhs}

Diagnoses: asthma since childhood; allergic rhinitis.
Medications: Clenil Modulite (beclometasone) 100 micrograms/dose, two puffs twice daily;
salbutamol 100 micrograms/dose, two puffs when required; cetirizine 10 mg once daily.
Allergy: ibuprofen (bronchospasm).

Ms Patel's asthma is well controlled on her current inhaled steroid. She uses her salbutamol
less than once a week and has had no exacerbations this year. Peak flow today 380 L/min
(predicted 450 L/min). Blood eosinophils 0.5 x10^9/L. Her inhaler technique was checked and is
good with a spacer.

Plan: continue beclometasone two puffs twice daily and salbutamol as required. She should
avoid ibuprofen and other NSAIDs. I have not arranged further follow-up but would be happy to
see her again if control worsens.

Yours sincerely,

Dr Helen Marsh
Consultant Respiratory Physician
"""


# --- pt-004 Mr David Williams --------------------------------------------------------------------


def williams() -> Record:
    rec = Record(
        "pt-004",
        _patient(
            "pt-004",
            4004,
            "RNB1000004",
            "Mr",
            "David",
            "Williams",
            "male",
            "1954-02-11",
            "8 Lyndhurst Way",
            "London",
            "SE15 4PX",
            "020 7946 0581",
            "riverside",
            ("W", "Widowed"),
        ),
        GPS["riverside"],
        GP_PRACTICES["riverside"],
    )
    rec.add(rec.patient)
    cardio, rad = COLLEAGUES["cardiology"], COLLEAGUES["radiology"]
    e_hf = rec.encounter(
        "2026-04-20",
        "2026-04-20",
        None,
        "AMB",
        ("185389009", "Follow-up visit"),
        "Heart failure review",
        HOSPITAL,
        CLINICIAN,
        "15:00",
        "15:30",
    )
    rec.encounter(
        "2026-10-19",
        "2026-10-19",
        "2026-10-24",
        "IMP",
        ("32485007", "Hospital admission"),
        "Decompensated heart failure",
        HOSPITAL,
        cardio,
        "18:30",
        "12:00",
    )
    rec.condition(
        "hfref",
        "703272007",
        "Heart failure with reduced ejection fraction",
        "Heart failure with reduced ejection fraction",
        "2023-05-09",
    )
    rec.condition("af", "49436004", "Atrial fibrillation", "Atrial fibrillation", "2023-05-09")
    rec.condition(
        "old-mi",
        "1755008",
        "Old myocardial infarction",
        "Previous myocardial infarction (2019)",
        "2019-11-23",
    )
    rec.condition(
        "pneumonia",
        "385093006",
        "Community acquired pneumonia",
        "Community-acquired pneumonia",
        "2025-01-08",
        status="resolved",
        abatement="2025-01-29",
    )
    rec.medication(
        "bisoprolol",
        "Bisoprolol 5mg tablets",
        5,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (5 mg) once a day",
        "2023-06-12",
        reason="Heart failure",
    )
    rec.medication(
        "ramipril",
        "Ramipril 2.5mg capsules",
        2.5,
        "mg",
        "mg",
        "twice daily",
        BD,
        ROUTE_ORAL,
        "Take one capsule (2.5 mg) twice a day",
        "2023-06-12",
        reason="Heart failure",
    )
    rec.medication(
        "furosemide-80",
        "Furosemide 40mg tablets",
        80,
        "mg",
        "mg",
        "once daily in the morning",
        MORNING,
        ROUTE_ORAL,
        "Take two tablets (80 mg) each morning",
        "2026-10-24",
        reason="Heart failure; dose increased on discharge 24/10/2026",
    )
    rec.medication(
        "furosemide-40",
        "Furosemide 40mg tablets",
        40,
        "mg",
        "mg",
        "once daily in the morning",
        MORNING,
        ROUTE_ORAL,
        "Take one tablet (40 mg) each morning",
        "2023-05-15",
        status="stopped",
        reason="Replaced by 80 mg each morning, 24/10/2026",
    )
    rec.medication(
        "spironolactone",
        "Spironolactone 25mg tablets",
        25,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (25 mg) once a day",
        "2024-02-05",
        reason="Heart failure",
    )
    rec.medication(
        "apixaban",
        "Apixaban 5mg tablets",
        5,
        "mg",
        "mg",
        "twice daily",
        BD,
        ROUTE_ORAL,
        "Take one tablet (5 mg) twice a day",
        "2023-05-15",
        reason="Atrial fibrillation",
    )
    rec.medication(
        "atorvastatin",
        "Atorvastatin 80mg tablets",
        80,
        "mg",
        "mg",
        "once daily at night",
        NIGHT,
        ROUTE_ORAL,
        "Take one tablet (80 mg) at night",
        "2019-11-27",
        reason="Secondary prevention",
    )
    rec.allergy(
        "codeine",
        "387494007",
        "Codeine",
        "Codeine",
        ("422587007", "Nausea"),
        "mild",
        "low",
        "medication",
        "2019-11-25",
        kind="intolerance",
    )
    for when, bnp, na, k, creat, egfr in [
        ("2026-04-14", 180, 138, 4.6, 112, 57),
        ("2026-10-20", 450, 134, 5.1, 128, 49),
    ]:
        rec.obs(
            "bnp",
            when,
            "30934-4",
            "Natriuretic peptide B [Mass/volume] in Serum or Plasma",
            "BNP",
            bnp,
            "ng/L",
            "ng/L",
            None,
            100,
            "<100 ng/L",
            interpretation="H",
        )
        rec.obs(
            "sodium",
            when,
            "2951-2",
            "Sodium [Moles/volume] in Serum or Plasma",
            "Sodium",
            na,
            "mmol/L",
            "mmol/L",
            133,
            146,
            "133-146 mmol/L",
        )
        rec.obs(
            "potassium",
            when,
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "Potassium",
            k,
            "mmol/L",
            "mmol/L",
            3.5,
            5.3,
            "3.5-5.3 mmol/L",
        )
        rec.obs(
            "creatinine",
            when,
            "14682-9",
            "Creatinine [Moles/volume] in Serum or Plasma",
            "Creatinine",
            creat,
            "µmol/L",
            "umol/L",
            59,
            104,
            "59-104 µmol/L",
            interpretation="H",
        )
        rec.obs(
            "egfr",
            when,
            "62238-1",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
            "Creatinine-based formula (CKD-EPI)",
            "eGFR",
            egfr,
            "mL/min/1.73m2",
            "mL/min/{1.73_m2}",
            90,
            None,
            ">90 mL/min/1.73m2",
            interpretation="L",
        )
    lvef_old = rec.obs(
        "lvef",
        "2024-06-03",
        "10230-1",
        "Left ventricular Ejection fraction",
        "LV ejection fraction",
        40,
        "%",
        "%",
        55,
        None,
        ">=55 %",
        category="imaging",
        interpretation="L",
    )
    lvef = rec.obs(
        "lvef",
        "2026-10-22",
        "10230-1",
        "Left ventricular Ejection fraction",
        "LV ejection fraction",
        35,
        "%",
        "%",
        55,
        None,
        ">=55 %",
        category="imaging",
        interpretation="L",
    )
    del lvef_old
    for when, kg in [("2026-04-20", 83.6), ("2026-10-19", 88.9), ("2026-10-24", 84.2)]:
        rec.obs(
            "weight",
            when,
            "29463-7",
            "Body weight",
            "Weight",
            kg,
            "kg",
            "kg",
            category="vital-signs",
            hhmm="10:00",
        )
    rec.bp("2026-04-20", 124, 76)
    rec.bp("2026-10-24", 118, 72)
    rec.report(
        "cxr-2026-10-19",
        "2026-10-19",
        ("RAD", "Radiology"),
        "18748-4",
        "Diagnostic imaging study",
        "Chest X-ray",
        "Cardiomegaly with upper lobe venous diversion and small bilateral pleural effusions, "
        "consistent with pulmonary oedema.",
        rad,
        hhmm="19:10",
    )
    rec.report(
        "echo-2026-10-22",
        "2026-10-22",
        ("CUS", "Cardiac Ultrasound"),
        "18748-4",
        "Diagnostic imaging study",
        "Transthoracic echocardiogram",
        "Dilated left ventricle with global hypokinesia; LVEF 35% (40% in June "
        "2024). Moderate functional mitral regurgitation. Estimated PA systolic pressure 42 mmHg.",
        cardio,
        results=[lvef],
        hhmm="11:15",
    )
    rec.letter(
        "2026-04-20", "2026-04-20", CLINICIAN, e_hf, "Heart failure clinic letter 20/04/2026", WILLIAMS_LETTER
    )
    return rec


WILLIAMS_LETTER = """Northbridge General Hospital - General Medical Outpatients
Northbridge Road, London SE1 7NB

20 April 2026

Dr R Patel
Riverside Medical Centre
40 Riverside Walk, London SE1 2RM

Dear Dr Patel,

Re: Mr David Williams, DOB 11/02/1954, NHS No. {nhs}

Diagnoses: heart failure with reduced ejection fraction (LVEF 40% in 2024); atrial fibrillation;
myocardial infarction 2019.
Medications: bisoprolol 5 mg once daily, ramipril 2.5 mg twice daily, furosemide 40 mg each
morning, spironolactone 25 mg once daily, apixaban 5 mg twice daily, atorvastatin 80 mg at night.
Intolerance: codeine (nausea).

Mr Williams is stable, NYHA class II, walking to the shops without stopping. Weight 83.6 kg.
BP 124/76 mmHg. BNP 180 ng/L, creatinine 112 µmol/L, eGFR 57, potassium 4.6 mmol/L.

Plan: no changes today. I have discussed switching ramipril to sacubitril/valsartan and he would
like to think about it. He knows to weigh himself daily and to contact the heart failure nurses
if he gains more than 2 kg in three days. Review in six months.

Yours sincerely,

Dr Sarah Chen
Consultant Physician, General Internal Medicine
"""


# --- pt-005 Mrs Fatima Khan ----------------------------------------------------------------------


def khan() -> Record:
    rec = Record(
        "pt-005",
        _patient(
            "pt-005",
            5005,
            "RNB1000005",
            "Mrs",
            "Fatima",
            "Khan",
            "female",
            "1981-08-30",
            "45 Albany Road",
            "London",
            "SE5 0AT",
            "07700 900562",
            "elmwood",
            ("M", "Married"),
        ),
        GPS["elmwood"],
        GP_PRACTICES["elmwood"],
    )
    rec.add(rec.patient)
    e1 = rec.encounter(
        "2026-06-08",
        "2026-06-08",
        None,
        "AMB",
        ("185389009", "Follow-up visit"),
        "Depression and hypothyroidism review",
        HOSPITAL,
        CLINICIAN,
        "15:20",
        "15:50",
    )
    rec.encounter(
        "2026-03-02",
        "2026-03-02",
        None,
        "AMB",
        ("185347001", "Encounter for problem"),
        "Low mood, poor sleep",
        rec.practice,
        rec.gp,
        "09:30",
        "09:45",
    )
    rec.condition("depression", "35489007", "Depressive disorder", "Depression (moderate)", "2026-03-02")
    rec.condition("hypothyroidism", "40930008", "Hypothyroidism", "Primary hypothyroidism", "2015-10-12")
    rec.medication(
        "sertraline-100",
        "Sertraline 100mg tablets",
        100,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (100 mg) once a day",
        "2026-06-08",
        reason="Depression",
    )
    rec.medication(
        "sertraline-50",
        "Sertraline 50mg tablets",
        50,
        "mg",
        "mg",
        "once daily",
        DAILY,
        ROUTE_ORAL,
        "Take one tablet (50 mg) once a day",
        "2026-03-02",
        status="stopped",
        reason="Dose increased to 100 mg, 08/06/2026",
    )
    rec.medication(
        "levothyroxine",
        "Levothyroxine sodium 75microgram tablets",
        75,
        "micrograms",
        "ug",
        "once daily in the morning",
        MORNING,
        ROUTE_ORAL,
        "Take one tablet (75 micrograms) each morning before breakfast",
        "2015-11-02",
        reason="Hypothyroidism",
    )
    rec.allergy(
        "sulfonamide",
        "387406002",
        "Sulfonamide",
        "Sulfonamide antibiotics (co-trimoxazole)",
        ("271807003", "Eruption of skin"),
        "moderate",
        "low",
        "medication",
        "2009-04-14",
    )
    for when, phq, gad in [("2026-03-02", 17, 13), ("2026-06-08", 15, 11), ("2026-11-02", 12, 9)]:
        rec.obs(
            "phq9",
            when,
            "44261-6",
            "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
            "PHQ-9 score",
            phq,
            "{score}",
            "{score}",
            0,
            4,
            "0-4 minimal; 10-14 moderate; 15-19 moderately severe",
            category="survey",
        )
        rec.obs(
            "gad7",
            when,
            "70274-6",
            "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
            "GAD-7 score",
            gad,
            "{score}",
            "{score}",
            0,
            4,
            "0-4 minimal; 5-9 mild; 10-14 moderate",
            category="survey",
        )
    for when, tsh in [("2025-12-01", 3.4), ("2026-06-01", 2.1)]:
        rec.obs(
            "tsh",
            when,
            "3016-3",
            "Thyrotropin [Units/volume] in Serum or Plasma",
            "TSH",
            tsh,
            "mU/L",
            "m[IU]/L",
            0.27,
            4.2,
            "0.27-4.2 mU/L",
        )
    rec.letter("2026-06-08", "2026-06-08", CLINICIAN, e1, "Medical clinic letter 08/06/2026", KHAN_LETTER)
    return rec


KHAN_LETTER = """Northbridge General Hospital - General Medical Outpatients
Northbridge Road, London SE1 7NB

8 June 2026

Dr A Hughes
Elmwood Surgery
3 Elmwood Road, London SE5 8EW

Dear Dr Hughes,

Re: Mrs Fatima Khan, DOB 30/08/1981, NHS No. {nhs}

Diagnoses: depression (moderate), diagnosed March 2026; primary hypothyroidism.
Medications: sertraline increased today from 50 mg to 100 mg once daily; levothyroxine
75 micrograms each morning.
Allergy: sulfonamide antibiotics (rash).

Mrs Khan has had three months of low mood, poor sleep and loss of interest. She has partly
improved on sertraline 50 mg: PHQ-9 15 (17 in March), GAD-7 11. There are no thoughts of
self-harm. TSH 2.1 mU/L on levothyroxine, so her thyroid is not contributing.

Plan: increase sertraline to 100 mg once daily. Self-referral to NHS Talking Therapies
encouraged. Safety-netting discussed. Review in five months with a repeat PHQ-9.

Yours sincerely,

Dr Sarah Chen
Consultant Physician, General Internal Medicine
"""

LETTER_MUST_MENTION = {
    "pt-001": ["HbA1c is 48 mmol/mol", "gliclazide", "metformin 1 g twice daily"],
    "pt-002": ["Invasive coronary angiography", "aspirin 75 mg", "150/93"],
    "pt-003": ["beclometasone", "380 L/min", "ibuprofen"],
    "pt-004": ["LVEF 40%", "furosemide 40 mg", "BNP 180"],
    "pt-005": ["sertraline to 100 mg", "PHQ-9 15", "TSH 2.1"],
}


def build_demo() -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Returns (shared resources, {patient id: resources}, {patient id: gold facts})."""
    shared = [
        HOSPITAL,
        CLINICIAN,
        CLINICIAN_ROLE,
        *GP_PRACTICES.values(),
        *GPS.values(),
        *COLLEAGUES.values(),
    ]
    per_patient: dict[str, list[dict]] = {}
    gold: dict[str, dict] = {}
    for build in (thompson, okafor, patel, williams, khan):
        rec = build()
        nhs = next(i["value"] for i in rec.patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)
        for r in rec.resources:
            if r["resourceType"] == "DocumentReference":
                from base64 import b64decode

                att = r["content"][0]["attachment"]
                text = b64decode(att["data"]).decode("utf-8").replace("{nhs}", _fmt_nhs(nhs))
                att["data"] = b64(text)
        per_patient[rec.pid] = rec.resources
        gold[rec.pid] = rec.finish_gold(LETTER_MUST_MENTION[rec.pid])
    return shared, per_patient, gold


def _fmt_nhs(v: str) -> str:
    return f"{v[:3]} {v[3:6]} {v[6:]}"


def demo_ages(on: date) -> dict[str, int]:
    from dataset_common import age_on

    out = {}
    for build in (thompson, okafor, patel, williams, khan):
        rec = build()
        out[rec.pid] = age_on(date.fromisoformat(rec.patient["birthDate"]), on)
    return out
