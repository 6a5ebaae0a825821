"""The clinic list against the wrong-patient risk: it keeps its place when it refreshes, it can be
searched by name, NHS number or date of birth, and driven from the keyboard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from clarke_desktop.schemas import Clinician, ClinicPatient, ConsultationStatus

pytestmark = pytest.mark.gui


def _patients(n: int) -> list[ClinicPatient]:
    return [
        ClinicPatient(
            id=f"pt-{i:03d}",
            nhs_number=f"943 476 {5800 + i:04d}",
            name=f"Patient {chr(65 + i)} Surname{i}",
            date_of_birth=f"{i + 1:02d}/03/1960",
            age=60,
            sex="F",
            appointment_time=f"{9 + i // 3:02d}:{(i % 3) * 20:02d}",
            summary="Review",
        )  # fmt: skip
        for i in range(n)
    ]


@pytest.fixture
def dashboard(styled_app, qtbot):
    from clarke_desktop.gui.screens.dashboard import DashboardScreen

    screen = DashboardScreen()
    qtbot.addWidget(screen)
    screen.resize(1000, 400)
    screen.show()
    qtbot.waitExposed(screen)
    screen.set_clinic(Clinician(name="Dr A"), _patients(12), {})
    return screen


def test_search_by_name_nhs_number_or_date_of_birth(dashboard, qtbot) -> None:
    opened = []
    dashboard.open_patient.connect(opened.append)
    dashboard.search.setText("Surname7")
    assert [r.patient.id for r in dashboard._visible()] == ["pt-007"]
    dashboard.search.setText("9434765803")  # spaces ignored
    assert [r.patient.id for r in dashboard._visible()] == ["pt-003"]
    dashboard.search.setText("05/03/1960")
    assert [r.patient.id for r in dashboard._visible()] == ["pt-004"]
    qtbot.keyClick(dashboard.search, Qt.Key.Key_Return)  # one match: Enter opens it
    assert opened == ["pt-004"]
    dashboard.search.setText("Surname1")  # Surname1, Surname10, Surname11: Enter does not guess
    qtbot.keyClick(dashboard.search, Qt.Key.Key_Return)
    assert opened == ["pt-004"]


def test_arrow_keys_move_between_rows_and_enter_opens(dashboard, qtbot) -> None:
    opened = []
    dashboard.open_patient.connect(opened.append)
    first = dashboard.rows["pt-000"]
    first.setFocus()
    qtbot.waitUntil(first.hasFocus, timeout=2000)
    qtbot.keyClick(first, Qt.Key.Key_Down)
    qtbot.keyClick(dashboard.rows["pt-001"], Qt.Key.Key_Down)
    assert dashboard.rows["pt-002"].hasFocus()
    qtbot.keyClick(dashboard.rows["pt-002"], Qt.Key.Key_Up)
    assert dashboard.rows["pt-001"].hasFocus()
    qtbot.keyClick(dashboard.rows["pt-001"], Qt.Key.Key_Return)
    assert opened == ["pt-001"]


def test_a_refresh_keeps_the_scroll_position_and_the_current_patient(dashboard, qtbot) -> None:
    bar = dashboard._scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=2000)
    bar.setValue(bar.maximum() // 2)
    kept = bar.value()
    dashboard.set_clinic(
        Clinician(name="Dr A"), _patients(12), {"pt-006": ConsultationStatus.REVIEW}, current="pt-006"
    )
    qtbot.wait(50)
    current = dashboard.rows["pt-006"]
    assert current.property("current") is True and current.hasFocus()
    top, bottom = bar.value(), bar.value() + dashboard._scroll.viewport().height()
    assert top <= current.y() and current.y() + current.height() <= bottom + 1  # visible
    assert abs(bar.value() - kept) <= current.height() * 2  # not thrown to the top or the bottom
