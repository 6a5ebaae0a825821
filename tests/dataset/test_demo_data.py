"""ensure_database / ensure_today_clinic / todays_clinic against a real local_fhir store."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest
from conftest import DEMO_IDS, RESOURCES

from clarke_desktop import demo_data
from clarke_desktop.fhir.client import FhirNotFound
from clarke_desktop.fhir.local import LocalFhirClient


def _versions(db: Path) -> int:
    from local_fhir import Store

    with Store(db) as s:
        return s.stats()["versions"]


def test_seeded_counts_match_the_manifest(seeded_db: Path, manifest) -> None:
    from local_fhir import Store

    with Store(seeded_db) as s:
        stats = s.stats()
    expected: dict[str, int] = {}
    for part in ("demo", "population"):
        for t, n in manifest["counts"][part].items():
            expected[t] = expected.get(t, 0) + n
    expected["Basic"] = 1  # the dataset marker
    assert stats["by_type"] == dict(sorted(expected.items()))


def test_second_call_is_a_no_op(seeded_db: Path) -> None:
    before = _versions(seeded_db)
    started = time.perf_counter()
    demo_data.ensure_database(seeded_db)
    took = time.perf_counter() - started
    assert _versions(seeded_db) == before  # nothing re-imported
    print(f"ensure_database on a seeded db: {took * 1000:.0f} ms")


def _mini_dataset(root: Path) -> Path:
    """A small copy of the bundled layout (demo bundles + a one-line population file)."""
    fhir = root / "fhir"
    (fhir / "demo").mkdir(parents=True)
    for f in (RESOURCES / "fhir" / "demo").glob("*.json"):
        shutil.copyfile(f, fhir / "demo" / f.name)
    with gzip.open(fhir / "population.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"resourceType": "Organization", "id": "org-mini", "name": "Mini Surgery"}) + "\n"
        )
    shutil.copytree(RESOURCES / "clinic", root / "clinic")
    return root


def test_new_dataset_reseeds_bundled_resources_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARKE_RESOURCES_DIR", str(_mini_dataset(tmp_path / "res")))
    db = tmp_path / "fhir.sqlite3"
    demo_data.ensure_database(db)
    client = LocalFhirClient(db)
    try:
        letter = client.create(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": "Patient/pt-001"},
                "content": [{"attachment": {"contentType": "text/plain", "data": "SGVsbG8="}}],
            }
        )
        edited = client.read("Patient", "pt-001")
        edited["telecom"] = [{"system": "phone", "value": "020 7946 0999"}]
        client.update(edited)
    finally:
        client.close()
    before = _versions(db)
    demo_data.ensure_database(db)
    assert _versions(db) == before  # same dataset: nothing imported, the edit stays
    # a newer dataset: the bundled Organization changes
    with gzip.open(tmp_path / "res" / "fhir" / "population.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"resourceType": "Organization", "id": "org-mini", "name": "Mini Surgery 2"}) + "\n"
        )
    demo_data.ensure_database(db)
    client = LocalFhirClient(db)
    try:
        assert client.read("Organization", "org-mini")["name"] == "Mini Surgery 2"
        assert client.read("DocumentReference", letter["id"])["id"] == letter["id"]  # the app's letter stays
        patient = client.read("Patient", "pt-001")
        assert patient["meta"]["versionId"] == "3" and patient["telecom"][0]["value"] == "020 7946 0812"
        marker = client.read("Basic", demo_data.MARKER_ID)
        assert demo_data._marker_value(marker) == demo_data.dataset_fingerprint()
    finally:
        client.close()


def test_missing_dataset_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARKE_RESOURCES_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(demo_data.DatasetError, match="nowhere"):
        demo_data.ensure_database(tmp_path / "db.sqlite3")


def test_default_path_is_the_app_database(monkeypatch: pytest.MonkeyPatch, seeded_db: Path, tmp_path) -> None:
    target = tmp_path / "app" / "fhir.sqlite3"
    monkeypatch.setenv("CLARKE_FHIR_DB", str(target))
    # seeding a second database is slow; a copy of the seeded one shows the default path is used
    target.parent.mkdir(parents=True)
    shutil.copyfile(seeded_db, target)
    before = _versions(target)
    assert demo_data.ensure_database() == target
    assert _versions(target) == before


@pytest.mark.parametrize("day", [date(2026, 11, 23), date(2027, 6, 15), date(2028, 2, 29)])
def test_todays_clinic_for_any_date(db_copy: Path, day: date) -> None:
    client = LocalFhirClient(db_copy)
    try:
        assert demo_data.todays_clinic(client, day)[1] == []  # nothing booked yet
        demo_data.ensure_today_clinic(client, day)
        clinician, rows = demo_data.todays_clinic(client, day)
    finally:
        client.close()
    assert clinician.name == "Dr Sarah Chen" and clinician.specialty == "General Internal Medicine"
    assert [r.id for r in rows[:5]] == DEMO_IDS
    assert [r.appointment_time for r in rows[:5]] == ["14:00", "14:20", "14:40", "15:00", "15:20"]
    times = [r.appointment_time for r in rows]
    assert times == sorted(times) and len(rows) == 8
    first = rows[0]
    assert first.name == "Mrs Margaret Thompson" and first.date_of_birth == "14/03/1959"
    assert first.nhs_number == "999 001 0013" and first.sex == "Female"
    assert first.age == day.year - 1959 - ((day.month, day.day) < (3, 14))
    assert "HbA1c" in first.summary


def test_booking_is_idempotent_and_day_specific(db_copy: Path) -> None:
    day = date(2026, 12, 1)
    client = LocalFhirClient(db_copy)
    try:
        demo_data.ensure_today_clinic(client, day)
        before = _versions(db_copy)
        demo_data.ensure_today_clinic(client, day)
        assert _versions(db_copy) == before
        assert len(client.search_all("Appointment", {"date": day.isoformat()})) == 8
        assert demo_data.todays_clinic(client, date(2026, 12, 2))[1] == []
        # a cancelled appointment is not re-booked and not listed
        appt = client.read("Appointment", demo_data.appointment_id(day, "pt-003"))
        appt["status"] = "cancelled"
        client.update(appt)
        demo_data.ensure_today_clinic(client, day)
        ids = [r.id for r in demo_data.todays_clinic(client, day)[1]]
        assert "pt-003" not in ids and len(ids) == 7
    finally:
        client.close()


def test_appointment_times_are_london_local(db_copy: Path) -> None:
    client = LocalFhirClient(db_copy)
    try:
        demo_data.ensure_today_clinic(client, date(2027, 7, 1))  # BST
        demo_data.ensure_today_clinic(client, date(2027, 1, 4))  # GMT
        summer = client.read("Appointment", demo_data.appointment_id(date(2027, 7, 1), "pt-001"))
        winter = client.read("Appointment", demo_data.appointment_id(date(2027, 1, 4), "pt-001"))
    finally:
        client.close()
    assert summer["start"] == "2027-07-01T14:00:00+01:00"
    assert winter["start"] == "2027-01-04T14:00:00+00:00"


def test_store_file_is_sqlite(seeded_db: Path) -> None:
    with sqlite3.connect(seeded_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_broken_bundled_file_is_named_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _mini_dataset(tmp_path / "res")
    (root / "fhir" / "demo" / "pt-003.json").write_text(
        '{"resourceType": "Bundle", "type": "transaction", "entry": ['
    )
    monkeypatch.setenv("CLARKE_RESOURCES_DIR", str(root))
    db = tmp_path / "fhir.sqlite3"
    with pytest.raises(demo_data.DatasetError, match="pt-003.json"):
        demo_data.ensure_database(db)
    client = LocalFhirClient(db)
    try:
        with pytest.raises(FhirNotFound):
            client.read("Basic", demo_data.MARKER_ID)  # no marker: the next start tries again
        with pytest.raises(FhirNotFound):
            client.read("Patient", "pt-003")  # the broken file changed nothing
        assert client.read("Patient", "pt-004")["id"] == "pt-004"  # the good files loaded
    finally:
        client.close()
