"""Servers in the settings file that no administrator set are not used, and the window says so
on every screen (a clinician must not believe letters reach the hospital record when they do not)."""

from __future__ import annotations

import pytest
from fake_backend import FakeBackend

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    "notice", [None, "The model or FHIR server in the settings file was not set by an administrator."]
)
def test_the_window_shows_a_refused_server_notice(styled_app, qtbot, tmp_path, notice: str | None) -> None:
    from clarke_desktop.gui.app import build_window

    backend = FakeBackend()
    backend.settings_notice = notice  # type: ignore[attr-defined]
    w = build_window(backend)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitUntil(lambda: "pt-001" in w.dashboard.rows, timeout=5000)
    assert w.settings_banner.isVisible() is bool(notice)
    if notice:
        assert notice in w.settings_banner.text()
        assert w.grab().save(str(tmp_path / "settings-notice.png"))
    w.runner.shutdown()



@pytest.mark.parametrize("locked", ["", "The model server is an IT setting: an administrator chooses it."])
def test_a_clinician_cannot_choose_a_model_server_in_settings(styled_app, locked: str) -> None:
    from clarke_desktop.gui.screens.settings import SettingsScreen
    from clarke_desktop.session.views import AppSettings, MicStatus

    screen = SettingsScreen()
    screen.set_values(AppSettings(llm_backend="installed", servers_locked=locked), MicStatus(devices=[]))
    item = screen.llm_backend.model().item(screen.llm_backend.findData("server"))
    assert item.isEnabled() is not bool(locked) and screen.server_url.isReadOnly() is bool(locked)
    assert item.toolTip() == locked
    screen.set_values(AppSettings(llm_backend="server", server_url="https://llm.trust.nhs.uk", servers_locked=locked),
                      MicStatus(devices=[]))  # fmt: skip
    item = screen.llm_backend.model().item(screen.llm_backend.findData("server"))
    assert item.isEnabled()  # IT's server stays shown (and can be left), never edited by a clinician
    screen.deleteLater()


def test_the_model_packs_are_checked_in_the_background_when_the_window_opens(styled_app, qtbot) -> None:
    from clarke_desktop.gui.app import build_window

    backend = FakeBackend()
    w = build_window(backend)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: getattr(backend, "models_verified", False), timeout=5000)
    w.runner.shutdown()
