"""A shared workstation: the window locks when left (every patient detail covered, every shortcut
off) until the same clinician unlocks or another signs in; nothing is signed without the signer's
password typed again at the preview."""

from __future__ import annotations

from pathlib import Path

import accounts
import pytest
from fake_backend import FakeBackend
from PySide6.QtCore import Qt

from clarke_desktop.identity import Account

pytestmark = pytest.mark.gui


@pytest.fixture
def real_window(styled_app, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real service over a set-up installation, signed in as the clinician."""
    from clarke_desktop.gui.app import build_window
    from clarke_desktop.identity import AccountBook
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    data = tmp_path / "data"
    monkeypatch.setenv("CLARKE_DATA_DIR", str(data))
    admin, _ = accounts.set_up(data)
    with AccountBook(data / "accounts.sqlite3", kdf=accounts.FAST) as book:
        book.add(admin, "locum", "Dr L. Ocum", "clinician", "locum passphrase")
    identity = Identity()
    service = ConsultationService(signed_in=accounts.signed_in(data), identity=identity)
    w = build_window(service)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=120_000)
    yield w
    w.runner.shutdown()
    service.close()
    identity.close()


def test_idle_lock_covers_everything_until_the_same_clinician_unlocks(real_window, qtbot, tmp_path) -> None:
    w = real_window
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=60_000)
    assert "Thompson" in w.header_title.text()
    w.idle.set_minutes(0.002)  # about 120 ms without input
    qtbot.waitUntil(w.is_locked, timeout=5000)
    lock = w._lock_screen
    assert lock.geometry() == w.rect() and lock.isVisible()
    assert not w.assistant_dock.isVisible()
    shot = w.grab()
    shot.save(str(tmp_path / "locked.png"))
    # Nothing of the patient shows through: the cover is one colour wherever no lock text is.
    image = shot.toImage()
    assert image.pixelColor(10, 10).name() == image.pixelColor(w.width() - 10, w.height() - 10).name() == "#1e3a5f"
    qtbot.keyClick(w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)  # shortcuts are off
    assert w.current_page() == "patient" and w.is_locked()

    lock.password.setText("not my password")
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Wrong" in lock.error.text(), timeout=10_000)
    assert w.is_locked()
    lock.password.setText(accounts.CLINICIAN_PASSWORD)
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_locked(), timeout=10_000)
    assert w.flow.patient is not None and w.current_page() == "patient"  # as it was
    from clarke_desktop.store import AppStore

    with AppStore() as store:
        events = [e.event for e in store.audit_entries()]
    assert "session_locked" in events and "reauthenticated" in events


def test_another_clinician_signing_in_closes_the_patient_and_acts_as_themselves(real_window, qtbot) -> None:
    w = real_window
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=60_000)
    w.lock("Locked.")
    lock = w._lock_screen
    lock.name.setText("locum")
    lock.password.setText("locum passphrase")
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_locked(), timeout=10_000)
    assert w.flow.patient is None and w.current_page() == "dashboard"
    assert w.backend.actor == "Dr L. Ocum" and "Dr L. Ocum" in w.windowTitle()


@pytest.fixture
def signed_in_fake(styled_app, qtbot):
    from clarke_desktop.gui.app import build_window

    w = build_window(FakeBackend(account=Account("s.chen", "Dr Sarah Chen", "clinician"), password="right one"))
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    w.flow.open_patient("pt-001")
    qtbot.waitUntil(lambda: w.flow.context is not None, timeout=5000)
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText("Doctor: how are the sugars? Patient: higher.")
    w.flow.generate()
    qtbot.waitUntil(lambda: w.review.document is not None and not w.review.busy_reasons, timeout=10000)
    for item in list(w.review.items.values()):
        qtbot.mouseClick(item.keep_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.review.can_sign(), timeout=5000)
    yield w
    w.runner.shutdown()


def test_a_wrong_password_at_the_preview_signs_nothing(signed_in_fake, qtbot, dialogs) -> None:
    w = signed_in_fake
    dialogs.password = "someone else's guess"
    w.flow.sign_off()
    qtbot.waitUntil(lambda: bool(dialogs.shown), timeout=5000)
    assert dialogs.asked_password and "Wrong" in dialogs.shown[-1]
    assert w.backend.signed == [] and w.current_page() == "review"
    dialogs.password = "right one"
    w.flow.sign_off()
    qtbot.waitUntil(lambda: w.current_page() == "signed", timeout=5000)
    names = [n for n, _ in w.backend.calls]
    assert names.index("reauthenticate:sign-off") < names.index("sign_off")


def test_first_start_creates_the_admin_and_clinician_and_shows_the_recovery_key_once(
    styled_app, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarke_desktop.gui.screens.signin import RecoveryKeyDialog, SetUpDialog, SignInDialog
    from clarke_desktop.session.identity import Identity

    monkeypatch.setenv("CLARKE_DATA_DIR", str(tmp_path / "data"))
    with Identity() as identity:
        assert identity.needs_setup()
        dialog = SetUpDialog(None, identity)
        qtbot.addWidget(dialog)
        dialog.admin_password.setText("admin passphrase")
        dialog.clin_name.setText("s.chen")
        dialog.clin_display.setText("Dr Sarah Chen")
        dialog.clin_registration.setText("GMC 7012345")
        dialog.clin_password.setText("short")  # refused: the admin is made, the clinician is not
        dialog._create()
        assert dialog.admin is not None and dialog.clinician is None and "clinician was not" in dialog.error.text()
        key = RecoveryKeyDialog(None, dialog.recovery_key)
        qtbot.addWidget(key)
        assert not key.ok.isEnabled() and key.key.toPlainText() == dialog.recovery_key
        key.kept.setChecked(True)
        assert key.ok.isEnabled()

        sign_in = SignInDialog(None, identity.sign_in)
        qtbot.addWidget(sign_in)
        sign_in.name.setText("it.admin")
        sign_in.password.setText("wrong passphrase")
        sign_in._try()
        assert sign_in.unlocked is None and "Wrong" in sign_in.error.text() and not sign_in.password.text()
        sign_in.password.setText("admin passphrase")
        sign_in._try()
        assert sign_in.unlocked is not None and sign_in.unlocked.account.role == "admin"


def test_approving_a_record_change_asks_for_the_password(signed_in_fake, qtbot, dialogs) -> None:
    w = signed_in_fake
    a = w.assistant
    a.question.setText("Any weight problems?")
    qtbot.mouseClick(a.ask_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "p1" in a.proposals, timeout=5000)
    dialogs.password = "a wrong one"
    qtbot.mouseClick(a.proposals["p1"].approve, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "reauthenticate:approve record change" in [n for n, _ in w.backend.calls], timeout=5000)
    qtbot.wait(200)
    assert "decide_proposal" not in [n for n, _ in w.backend.calls]  # nothing written
    dialogs.password = "right one"
    qtbot.mouseClick(a.proposals["p1"].approve, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: a.proposals["p1"].state.text().startswith("Approved"), timeout=5000)
