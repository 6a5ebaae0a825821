"""The bundled clinic dataset: seed the app's FHIR store and keep today's clinic in it.

- `ensure_database()` loads resources/fhir (five demo patients, clinic staff, 50 UK-localised
  Synthea patients) into the app's local_fhir database on first start, offline. A marker resource
  (Basic/clarke-dataset) records the fingerprint of the bundled files, so later starts cost one
  read, and a newer dataset re-imports only the bundled resources (by id, as new versions):
  letters and other resources the app wrote are left alone.
- `ensure_today_clinic()` books today's appointments (resources/clinic/clinic.json) in the store
  when they are missing, with ids derived from the date, so calling it again changes nothing.
- `todays_clinic()` reads today's Appointments back from the store for the dashboard.

Plain Python, no Qt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clarke_desktop import paths
from clarke_desktop.errors import ClarkeError
from clarke_desktop.fhir.client import FhirClient, FhirError, FhirNotFound
from clarke_desktop.schemas import Clinician, ClinicPatient
from clarke_desktop.uk_format import nhs_number

log = logging.getLogger(__name__)

MARKER_TYPE, MARKER_ID = "Basic", "clarke-dataset"
MARKER_URL = "https://clarke.example/fhir/StructureDefinition/bundled-dataset-fingerprint"
APPOINTMENT_TAG = {"system": "https://clarke.example/fhir/tags", "code": "clarke-clinic-list"}
INACTIVE_APPOINTMENT = {"cancelled", "entered-in-error", "noshow"}


class DatasetError(ClarkeError):
    """The bundled dataset is missing or could not be loaded; the message names the file."""


@dataclass(frozen=True)
class ClinicSlot:
    patient_id: str
    time: str  # HH:MM, clinic local time
    summary: str
    demo: bool


@dataclass(frozen=True)
class ClinicPlan:
    clinician: Clinician
    practitioner_role_id: str | None
    organization_id: str | None
    timezone: ZoneInfo
    slot_minutes: int
    slots: list[ClinicSlot]


# --- files ------------------------------------------------------------------------------------


def fhir_resources_dir() -> Path:
    return paths.resources_dir() / "fhir"


def dataset_files() -> list[Path]:
    """What gets imported, in order: clinic staff first, then the demo patients, then the population."""
    root = fhir_resources_dir()
    demo = sorted((root / "demo").glob("*.json"))
    population = sorted(root.glob("*.ndjson.gz"))
    if not demo or not population:
        raise DatasetError(
            f"the bundled FHIR dataset is missing from {root} (expected demo/*.json and *.ndjson.gz); "
            "reinstall Clarke Desktop or run scripts/build_dataset.py"
        )
    return [*demo, *population]


def dataset_fingerprint(files: list[Path] | None = None) -> str:
    h = hashlib.sha256()
    root = fhir_resources_dir()
    for f in files or dataset_files():
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def load_clinic_plan(path: Path | None = None) -> ClinicPlan:
    path = path or paths.resources_dir() / "clinic" / "clinic.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        c = data["clinician"]
        return ClinicPlan(
            clinician=Clinician(
                name=c["name"],
                title=c.get("title", ""),
                specialty=c.get("specialty", ""),
                practitioner_id=c.get("practitioner_id"),
            ),
            practitioner_role_id=c.get("practitioner_role_id"),
            organization_id=data.get("location", {}).get("organization_id"),
            timezone=ZoneInfo(data.get("timezone", "Europe/London")),
            slot_minutes=int(data.get("slot_minutes", 20)),
            slots=[
                ClinicSlot(a["patient_id"], a["time"], a["summary"], bool(a.get("demo", False)))
                for a in data["appointments"]
            ],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"cannot read the clinic list {path}: {exc}") from exc


# --- seeding ----------------------------------------------------------------------------------


def _marker(fingerprint: str) -> dict[str, Any]:
    return {
        "resourceType": MARKER_TYPE,
        "id": MARKER_ID,
        "code": {"text": "Clarke Desktop bundled dataset"},
        "extension": [{"url": MARKER_URL, "valueString": fingerprint}],
    }


def _marker_value(resource: dict[str, Any]) -> str | None:
    for ext in resource.get("extension", []):
        if ext.get("url") == MARKER_URL:
            value: str | None = ext.get("valueString")
            return value
    return None


def ensure_database(db_path: Path | None = None, on_progress: Callable[..., None] | None = None) -> Path:
    """Create or update the app's FHIR database from the bundled dataset. Idempotent. A store named
    by CLARKE_FHIR_DB is returned as it is, never seeded (DatasetError when it does not exist).

    Fast when already done (one read and a hash of ~2 MB of bundled files). Offline.
    `on_progress` receives local_fhir's ImportProgress while a (first) import runs.
    """
    from local_fhir import NotFound, Store

    if db_path is None and paths.fhir_db_is_named():
        # A store the user named is theirs: never seeded, never mixed with demo patients.
        named = paths.fhir_db_path()
        if not named.is_file():
            raise DatasetError(
                f"CLARKE_FHIR_DB names {named}, which does not exist. Clarke never creates or fills a store you "
                f"name: create it with `local-fhir init --db {named}` and import your data, or unset "
                "CLARKE_FHIR_DB to use the bundled demo store."
            )
        return named
    db = Path(db_path) if db_path else paths.own_fhir_db_path()
    files = dataset_files()
    fingerprint = dataset_fingerprint(files)
    store = Store(db)
    try:
        try:
            if _marker_value(store.read(MARKER_TYPE, MARKER_ID)) == fingerprint:
                return db
        except NotFound:
            pass
        log.info("loading the bundled clinic dataset into %s", db)
        report = store.import_paths(files, on_progress)
        failed = report.failed
        if failed:
            first = failed[0]
            raise DatasetError(
                f"the bundled dataset did not load: {first.path.name}: {first.error} "
                f"({len(failed)} of {len(report.files)} files failed and changed nothing; the next start "
                "tries again)"
            )
        store.update(_marker(fingerprint))
        log.info("bundled dataset loaded: %d resources in %.1f s", report.resources, report.seconds)
    finally:
        store.close()
    return db


# --- today's clinic ---------------------------------------------------------------------------


def appointment_id(day: date, patient_id: str) -> str:
    return f"clinic-{day:%Y%m%d}-{patient_id}"[:64]


def _appointment(plan: ClinicPlan, slot: ClinicSlot, day: date, patient_name: str | None) -> dict[str, Any]:
    hh, mm = (int(x) for x in slot.time.split(":"))
    start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=plan.timezone)
    end = start + timedelta(minutes=plan.slot_minutes)
    patient_ref: dict[str, str] = {"reference": f"Patient/{slot.patient_id}"}
    if patient_name:
        patient_ref["display"] = patient_name
    participants: list[dict[str, Any]] = [
        {"actor": patient_ref, "required": "required", "status": "accepted"},
    ]
    if plan.clinician.practitioner_id:
        participants.append(
            {
                "actor": {
                    "reference": f"Practitioner/{plan.clinician.practitioner_id}",
                    "display": plan.clinician.name,
                },
                "required": "required",
                "status": "accepted",
            }
        )
    return {
        "resourceType": "Appointment",
        "id": appointment_id(day, slot.patient_id),
        "meta": {"tag": [APPOINTMENT_TAG]},
        "status": "booked",
        "serviceType": [{"text": plan.clinician.specialty or "Outpatient clinic"}],
        "appointmentType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0276",
                    "code": "FOLLOWUP",
                    "display": "A follow up visit from a previous appointment",
                }
            ]
        },
        "reasonCode": [{"text": slot.summary}],
        "description": slot.summary,
        "start": start.isoformat(timespec="seconds"),
        "end": end.isoformat(timespec="seconds"),
        "minutesDuration": plan.slot_minutes,
        "participant": participants,
    }


def ensure_today_clinic(client: FhirClient, today: date | None = None) -> None:
    """Book the bundled clinic list for `today` (default: the local date) where it is missing."""
    day = today or date.today()
    plan = load_clinic_plan()
    ids = {s.patient_id: appointment_id(day, s.patient_id) for s in plan.slots}
    existing = {
        r["id"] for r in client.search_all("Appointment", {"_id": ",".join(ids.values()), "_count": "100"})
    }
    patients = {r["id"]: r for r in client.search_all("Patient", {"_id": ",".join(ids), "_count": "100"})}
    entries = []
    for slot in plan.slots:
        if ids[slot.patient_id] in existing:
            continue
        patient = patients.get(slot.patient_id)
        if patient is None:
            log.warning(
                "clinic list: Patient/%s is not in the FHIR store; appointment skipped", slot.patient_id
            )
            continue
        resource = _appointment(plan, slot, day, patient_display_name(patient))
        entries.append(
            {
                "fullUrl": f"Appointment/{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"Appointment/{resource['id']}"},
            }
        )
    if entries:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        log.info("booked %d appointment(s) for %s", len(entries), day.isoformat())


def todays_clinic(client: FhirClient, today: date | None = None) -> tuple[Clinician, list[ClinicPatient]]:
    """The clinician and the day's appointments, read from the FHIR store, sorted by time."""
    day = today or date.today()
    plan = load_clinic_plan()
    clinician = _clinician(client, plan)
    params: dict[str, str] = {"date": day.isoformat(), "_count": "200"}
    if plan.clinician.practitioner_id:
        params["practitioner"] = plan.clinician.practitioner_id
    appointments = [
        a for a in client.search_all("Appointment", params) if a.get("status") not in INACTIVE_APPOINTMENT
    ]
    appointments.sort(key=lambda a: (a.get("start", ""), a["id"]))
    patient_ids = [pid for a in appointments if (pid := _patient_id(a))]
    patients = (
        {r["id"]: r for r in client.search_all("Patient", {"_id": ",".join(dict.fromkeys(patient_ids))})}
        if patient_ids
        else {}
    )
    rows: list[ClinicPatient] = []
    for a in appointments:
        pid = _patient_id(a)
        patient = patients.get(pid or "")
        if patient is None:
            log.warning("Appointment/%s names a patient that is not in the store; not listed", a["id"])
            continue
        start = datetime.fromisoformat(a["start"].replace("Z", "+00:00")).astimezone(plan.timezone)
        rows.append(clinic_patient(patient, day, start.strftime("%H:%M"), a.get("description", ""), a["id"]))
    return clinician, rows


def _patient_id(appointment: dict[str, Any]) -> str | None:
    for p in appointment.get("participant", []):
        ref: str = p.get("actor", {}).get("reference", "")
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def _clinician(client: FhirClient, plan: ClinicPlan) -> Clinician:
    base = plan.clinician
    name, title, specialty = base.name, base.title, base.specialty
    try:
        if base.practitioner_id:
            name = patient_display_name(client.read("Practitioner", base.practitioner_id)) or name
        if plan.practitioner_role_id:
            role = client.read("PractitionerRole", plan.practitioner_role_id)
            title = next((c.get("text") for c in role.get("code", []) if c.get("text")), title)
            specialty = next((c.get("text") for c in role.get("specialty", []) if c.get("text")), specialty)
    except FhirNotFound:
        log.warning("the clinician's Practitioner/PractitionerRole is not in the store; using clinic.json")
    except FhirError as exc:
        log.warning("could not read the clinician from the store (%s); using clinic.json", exc)
    return Clinician(name=name, title=title, specialty=specialty, practitioner_id=base.practitioner_id)


# --- patient formatting -----------------------------------------------------------------------


def patient_display_name(resource: dict[str, Any]) -> str:
    names = resource.get("name") or []
    n = next((x for x in names if x.get("use") == "official"), names[0] if names else {})
    text: str | None = n.get("text")
    if text:
        return text
    return " ".join([*n.get("prefix", []), *n.get("given", []), n.get("family", "")]).strip()


NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def clinic_patient(
    patient: dict[str, Any], day: date, time: str, summary: str, appt_id: str | None
) -> ClinicPatient:
    nhs = next(
        (i.get("value", "") for i in patient.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM),
        "",
    )
    birth = patient.get("birthDate", "")
    age = 0
    dob = ""
    if len(birth) >= 10:
        b = date.fromisoformat(birth[:10])
        age = day.year - b.year - ((day.month, day.day) < (b.month, b.day))
        dob = b.strftime("%d/%m/%Y")
    return ClinicPatient(
        id=patient["id"],
        nhs_number=nhs_number(nhs),
        name=patient_display_name(patient),
        date_of_birth=dob,
        age=age,
        sex=(patient.get("gender") or "unknown").capitalize(),
        appointment_time=time,
        summary=summary,
        appointment_id=appt_id,
    )


@lru_cache(maxsize=1)
def bundled_manifest() -> dict[str, Any]:
    """resources/fhir/manifest.json: dataset version, file hashes and resource counts."""
    manifest: dict[str, Any] = json.loads(
        (fhir_resources_dir() / "manifest.json").read_text(encoding="utf-8")
    )
    return manifest
