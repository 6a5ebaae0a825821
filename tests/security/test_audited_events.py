"""Consequential events the audit log lacked (issue #16): failed sign-ins, record views, settings
changes (the model server an administrator's alone), and which models produced a transcript and a
context. Each runs on a real set-up installation and reads the real, keyed log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import accounts
import pytest

from clarke_desktop.cancel import CancelToken
from clarke_desktop.identity import AccountBook, SignInError, keyring
from clarke_desktop.schemas import ModelInfo, PatientContext, Transcript
from clarke_desktop.session.errors import SessionError
from clarke_desktop.session.identity import Identity
from clarke_desktop.store import AppStore, AuditEntry


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(folder))
    accounts.set_up(folder)
    yield folder
    keyring.forget(folder)


def _events(name: str) -> list[AuditEntry]:
    with AppStore() as store:
        return [e for e in store.audit_entries() if e.event == name]


def _identity(data: Path) -> Identity:
    identity = Identity()
    identity.book.close()
    identity.book = AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST)
    return identity


def test_failed_sign_ins_reach_the_log_at_the_next_sign_in(data: Path) -> None:
    keyring.forget(data)  # a new process: the log does not open yet
    identity = _identity(data)
    try:
        for name, password in ((accounts.CLINICIAN, "not the password"), ("mallory", "guess one two")):
            with pytest.raises(SignInError):
                identity.sign_in(name, password)
        identity.sign_in(accounts.CLINICIAN, accounts.CLINICIAN_PASSWORD)
    finally:
        identity.close()
    failed = _events("sign_in_failed")
    assert [(e.actor, e.data["reason"]) for e in failed] == [
        (accounts.CLINICIAN, "wrong password"),
        ("mallory", "unknown user name"),
    ]
    signed = _events("signed_in")[-1]
    assert signed.seq > failed[-1].seq and signed.data["failed_before"] == 1
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        assert book.failed_sign_ins() == []  # written once, not again at the next sign-in


def test_opening_a_record_and_changing_settings_are_audited_and_the_server_is_its_admins(data: Path) -> None:
    from clarke_desktop.session.service import ConsultationService

    identity = _identity(data)
    service = ConsultationService(signed_in=accounts.signed_in(data), identity=identity)
    try:
        service.clinic()
        service.patient_context("pt-001", CancelToken())
        opened = _events("record_opened")
        assert opened and opened[-1].actor == accounts.CLINICIAN_NAME
        assert opened[-1].data["patient_id"] == "pt-001" and opened[-1].data["fhir_resources"] > 0

        wanted = service.settings()
        assert "IT setting" in wanted.servers_locked  # the Settings screen greys the server out
        wanted.clinician_title = "Consultant Diabetologist"
        service.save_settings(wanted)
        changed = _events("settings_changed")[-1]
        assert changed.actor == accounts.CLINICIAN_NAME and changed.data["changed"] == ["clinician.title"]

        wanted.llm_backend, wanted.server_url = "server", "https://models.example.nhs.uk"
        with pytest.raises(SessionError, match="IT setting"):
            service.save_settings(wanted)
        assert service.settings().llm_backend != "server"
    finally:
        service.close()
        identity.close()


def test_the_transcript_and_context_events_name_the_models_that_made_them(data: Path) -> None:
    with AppStore() as store:
        cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
        store.save_transcript(
            cid, Transcript(text="Patient: better.", model="medasr (int8, CPU)", model_sha256="ab" * 32), actor="x"
        )
        context = PatientContext.model_validate(
            {"patient_id": "pt-001", "demographics": {"name": "A", "date_of_birth": "1960-01-01"}}
        )
        context.judged_by = ModelInfo(name="medgemma-1.5-4b", role="ehr_agent", sha256="cd" * 32)
        context.judgement_prompt_version = "context-judgement/1"
        store.save_context(cid, context, actor="x")
    transcript = _events("transcript_produced")[-1]
    assert transcript.data["model_sha256"] == "ab" * 32
    built = _events("context_retrieved")[-1]
    assert built.data["model_sha256"] == "cd" * 32 and built.data["prompt_version"] == "context-judgement/1"


def test_local_fhir_writes_to_clarkes_store_are_audited_under_the_signed_in_account(
    data: Path, tmp_path: Path
) -> None:
    import json

    from click.testing import CliRunner
    from starlette.testclient import TestClient

    from clarke_desktop import demo_data, paths
    from clarke_desktop.cli.auth import _audit_fhir_writes
    from local_fhir import observers
    from local_fhir.cli import main as local_fhir
    from local_fhir.server import make_app
    from local_fhir.store import Store

    demo_data.ensure_database()
    keyring.forget(data)  # `local-fhir` as its own process
    pw = tmp_path / "pw"
    pw.write_text(accounts.ADMIN_PASSWORD + "\n")
    bundle = tmp_path / "b.json"
    patient = {"resourceType": "Patient", "id": "pt-new", "gender": "female"}
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}))
    done = CliRunner().invoke(local_fhir, ["--user", accounts.ADMIN, "--password-file", str(pw), "import", str(bundle)])
    assert done.exit_code == 0, done.output
    written = _events("fhir_written")
    assert [(e.actor, e.data["channel"], e.data["interaction"], e.data["resources"]) for e in written] == [
        (accounts.ADMIN, "cli", "import", 1)
    ]

    # Over REST: the same observer, channel "rest" (what `local-fhir serve` sets up).
    observers.register(_audit_fhir_writes(accounts.ADMIN))
    observers.channel = "rest"
    try:
        with Store(paths.own_fhir_db_path()) as store:
            client = TestClient(make_app(store, token="t" * 32, port=80), base_url="http://localhost")
            answer = client.delete("/Patient/pt-new", headers={"Authorization": "Bearer " + "t" * 32})
            assert answer.status_code in (200, 204), answer.text
    finally:
        observers.reset()
    last = _events("fhir_written")[-1]
    assert (last.actor, last.data["channel"], last.data["interaction"], last.data["id"]) == (
        accounts.ADMIN, "rest", "delete", "pt-new"
    )


def test_servers_written_into_settings_by_hand_are_not_used_until_an_admin_sets_them(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings.json is the user's own file: editing it must not route consultations anywhere."""
    import json

    from click.testing import CliRunner

    from clarke_desktop import paths
    from clarke_desktop.cli import cli
    from clarke_desktop.config import load_settings, save_settings
    from clarke_desktop.session.service import ConsultationService

    def hand_edit(url: str) -> None:
        s = load_settings()
        s.fhir.backend, s.fhir.remote_url = "remote", url
        save_settings(s)

    def servers() -> tuple[dict[str, str | None], str | None]:
        service = ConsultationService(signed_in=accounts.signed_in(data), identity=_identity(data))
        try:
            return service.servers(), service.settings_notice
        finally:
            service.close()

    hand_edit("https://fhir.attacker.example/R4")
    used, notice = servers()
    assert used["fhir_server"] is None and notice and "edited outside Clarke" in notice
    refused = _events("settings_refused")
    assert refused and refused[-1].data["routes"]["fhir_remote_url"] == "https://fhir.attacker.example/R4"

    admin_pw = tmp_path / "admin.pw"
    admin_pw.write_text(accounts.ADMIN_PASSWORD + "\n")
    clinician_pw = tmp_path / "clin.pw"
    clinician_pw.write_text(accounts.CLINICIAN_PASSWORD + "\n")
    base = ["settings", "servers", "--fhir-server", "https://fhir.trust.nhs.uk/R4", "--json"]
    denied = CliRunner().invoke(cli, [*base, "--user", accounts.CLINICIAN, "--password-file", str(clinician_pw)])
    assert denied.exit_code == 1 and "administrator" in denied.output
    plain = CliRunner().invoke(cli, ["settings", "servers", "--fhir-server", "http://fhir.trust.nhs.uk/R4",
                                     "--user", accounts.ADMIN, "--password-file", str(admin_pw)])  # fmt: skip
    assert plain.exit_code == 1 and "https://" in plain.output
    done = CliRunner().invoke(cli, [*base, "--user", accounts.ADMIN, "--password-file", str(admin_pw)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["fhir_server"] == "https://fhir.trust.nhs.uk/R4"
    changed = _events("settings_changed")[-1]
    assert changed.actor == "IT Admin"
    assert changed.data["routes"]["fhir_remote_url"] == "https://fhir.trust.nhs.uk/R4"

    used, notice = servers()  # set through Clarke: used
    assert used["fhir_server"] == "https://fhir.trust.nhs.uk/R4" and notice is None
    hand_edit("https://fhir.attacker.example/R4")  # changed by hand afterwards: refused again
    used, notice = servers()
    assert used["fhir_server"] is None and notice
    assert paths.settings_path().is_file()


def test_an_idle_lock_stopped_by_hand_is_not_used_until_an_admin_sets_it(data: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from clarke_desktop.cli import cli
    from clarke_desktop.config import load_settings, save_settings
    from clarke_desktop.session.service import ConsultationService

    def idle_lock() -> float:
        service = ConsultationService(signed_in=accounts.signed_in(data), identity=_identity(data))
        try:
            return service.idle_lock_minutes
        finally:
            service.close()

    s = load_settings()
    s.security.idle_lock_minutes = 0  # "never": written into the user's own file
    save_settings(s)
    assert idle_lock() == 5 and _events("settings_refused")
    admin_pw = tmp_path / "admin.pw"
    admin_pw.write_text(accounts.ADMIN_PASSWORD + "\n")
    done = CliRunner().invoke(cli, ["settings", "idle-lock", "10", "--user", accounts.ADMIN, "--password-file", str(admin_pw)])
    assert done.exit_code == 0, done.output
    assert idle_lock() == 10
    assert _events("settings_changed")[-1].data["routes"]["idle_lock_minutes"] == 10


def test_verify_models_checks_the_installed_letter_and_ehr_packs(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the window runs in the background at start, so the first letter does not hash 16.5 GB."""
    from clarke_desktop.session.service import ConsultationService

    asked: list[str] = []
    monkeypatch.setattr("clarke_desktop.modelpack.locate", lambda role: asked.append(role))
    service = ConsultationService(signed_in=accounts.signed_in(data), identity=_identity(data))
    try:
        assert service.verify_models() == {"ehr_agent": False, "letter_writer": False}
        assert asked == ["ehr_agent", "letter_writer"]
        service._settings.llm.backend = "embedded"  # the demo model only: nothing to check
        assert service.verify_models() == {} and len(asked) == 2
    finally:
        service.close()
