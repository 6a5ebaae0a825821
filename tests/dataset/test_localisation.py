"""The Synthea patients read as UK records: no US identifiers, addresses, phones or providers."""

from __future__ import annotations

import json
import re

POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$")
US_ID_SYSTEMS = ("us-ssn", "us-npi", "2.16.840.1.113883.4.3", "passportNumber", "smarthealthit.org")
US_STATES = {"MA", "NY", "CA", "TX", "Massachusetts"}


def _all(demo_resources, population):
    return [*demo_resources, *population]


def test_no_us_identifiers(demo_resources, population) -> None:
    for r in _all(demo_resources, population):
        for ident in r.get("identifier", []):
            system = ident.get("system", "")
            assert not any(s in system for s in US_ID_SYSTEMS), (r["resourceType"], r["id"], system)
            code = ident.get("type", {}).get("coding", [{}])[0].get("code")
            assert code not in {"SS", "DL", "PPN"}, (r["id"], code)


def test_addresses_are_uk(demo_resources, population) -> None:
    n = 0
    for r in _all(demo_resources, population):
        for a in r.get("address", []):
            assert a.get("country") == "GB", (r["id"], a)
            assert POSTCODE.match(a.get("postalCode", "")), (r["id"], a.get("postalCode"))
            assert a.get("state") not in US_STATES
            assert "extension" not in a  # Synthea's US geolocation
            n += 1
    assert n >= 100


def test_phone_numbers_are_uk_drama_numbers(demo_resources, population) -> None:
    for r in _all(demo_resources, population):
        for t in r.get("telecom", []):
            if t.get("system") == "phone":
                assert re.fullmatch(r"020 7946 0\d{3}|07700 900\d{3}", t["value"]), (r["id"], t["value"])


def test_patients_have_uk_shape(population) -> None:
    patients = [r for r in population if r["resourceType"] == "Patient"]
    assert len(patients) >= 45
    for p in patients:
        assert "extension" not in p  # US Core race/ethnicity, birthplace, maiden name, QALY
        name = p["name"][0]
        assert not re.search(r"\d", name["family"] + "".join(name["given"]))  # Synthea's numbered names
        assert all("." not in x for x in name.get("prefix", []))  # "Mrs", not "Mrs."
        langs = [c["language"]["coding"][0]["code"] for c in p.get("communication", [])]
        assert "en-US" not in langs
        gp = [g["reference"].split("/")[0] for g in p["generalPractitioner"]]
        assert gp == ["Practitioner", "Organization"]


def test_providers_are_uk(population) -> None:
    for r in population:
        if r["resourceType"] == "Organization":
            assert r["identifier"][0]["system"] == "https://fhir.nhs.uk/Id/ods-organization-code"
            assert r["name"] == r["name"].strip() and not r["name"].isupper(), r["name"]
        if r["resourceType"] == "Practitioner":
            assert r["identifier"][0]["system"] == "https://fhir.hl7.org.uk/Id/gmc-number"
            assert r["name"][0]["prefix"] == ["Dr"]


def test_medicines_have_bnf_names_not_rxnorm(population) -> None:
    meds = [r for r in population if r["resourceType"] == "MedicationRequest"]
    assert meds
    for m in meds:
        cc = m["medicationCodeableConcept"]
        assert "coding" not in cc, "RxNorm is a US terminology"
        assert not re.search(r"\b(MG|ML|ACTUAT)\b", cc["text"]), cc["text"]
    text = json.dumps(meds)
    for us_name in ("Acetaminophen", "Albuterol", "Hydrochlorothiazide", "Epinephrine 1 MG"):
        assert us_name not in text


def test_dates_moved_into_the_present(population) -> None:
    latest = max(r.get("effectiveDateTime", "") for r in population if r["resourceType"] == "Observation")
    assert "2025-06" <= latest[:7] <= "2026-11"
