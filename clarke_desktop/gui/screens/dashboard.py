"""Dashboard: today's clinic, one row per appointment, with its consultation status."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from clarke_desktop.gui.widgets import badge, clear_layout, label, notice, repolish, scroll_page
from clarke_desktop.schemas import Clinician, ClinicPatient, ConsultationStatus

STATUS_LOOK: dict[ConsultationStatus, tuple[str, str]] = {
    ConsultationStatus.WAITING: ("Waiting", "neutral"),
    ConsultationStatus.RECORDING: ("Recording", "rec"),
    ConsultationStatus.PAUSED: ("Paused", "rec"),
    ConsultationStatus.PROCESSING: ("In progress", "info"),
    ConsultationStatus.REVIEW: ("Draft to review", "warn"),
    ConsultationStatus.SIGNED_OFF: ("Signed off ✓", "ok"),
}


class PatientRow(QFrame):
    """One appointment; click or Enter opens the patient."""

    activated = Signal(str)

    def __init__(self, patient: ClinicPatient, status: ConsultationStatus) -> None:
        super().__init__()
        self.patient = patient
        self.setObjectName("patientRow")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        grid = QGridLayout(self)
        grid.setContentsMargins(16, 10, 16, 10)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(2)
        time = QLabel(patient.appointment_time)
        time.setStyleSheet("font-size: 15pt; font-weight: 700; color: #1E3A5F;")
        time.setMinimumWidth(64)
        name = QLabel(patient.name)
        name.setStyleSheet("font-size: 13pt; font-weight: 700;")
        meta = label(
            f"NHS {patient.nhs_number}  ·  {patient.age} {patient.sex}  ·  born {patient.date_of_birth}",
            "caption",
        )
        summary = label(patient.summary, wrap=True)
        text, tone = STATUS_LOOK.get(status, ("Waiting", "neutral"))
        self.status_badge = badge(text, tone, f"Status: {text}")
        grid.addWidget(time, 0, 0, 2, 1, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(name, 0, 1)
        grid.addWidget(self.status_badge, 0, 2, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(meta, 1, 1, 1, 2)
        grid.addWidget(summary, 2, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.setAccessibleName(f"{patient.appointment_time} {patient.name}, NHS {patient.nhs_number}, {text}")
        self.setToolTip("Open this patient (Enter)")

    def set_current(self, current: bool) -> None:
        self.setProperty("current", current)
        repolish(self)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(self.patient.id)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.activated.emit(self.patient.id)
            return
        super().keyPressEvent(event)


class DashboardScreen(QWidget):
    open_patient = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, PatientRow] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        body = QWidget()
        self._lay = QVBoxLayout(body)
        self._lay.setContentsMargins(28, 22, 28, 22)
        self._lay.setSpacing(10)
        head = QHBoxLayout()
        self.title = label("Today's clinic", "h1")
        self.subtitle = label("", "caption")
        col = QVBoxLayout()
        col.addWidget(self.title)
        col.addWidget(self.subtitle)
        head.addLayout(col)
        head.addStretch(1)
        self.counts = label("", "caption")
        head.addWidget(self.counts, 0, Qt.AlignmentFlag.AlignBottom)
        self._lay.addLayout(head)
        self._list = QVBoxLayout()
        self._list.setSpacing(8)
        self._lay.addLayout(self._list)
        self._lay.addStretch(1)
        self._list.addWidget(
            label(
                "Loading today's clinic… (the first start prepares the record store: about a minute)",
                "caption",
            )
        )
        outer.addWidget(scroll_page(body))

    def show_error(self, message: str) -> None:
        clear_layout(self._list)
        self._list.addWidget(notice(message, "alert", "Could not load today's clinic"))

    def set_clinic(
        self,
        clinician: Clinician,
        patients: list[ClinicPatient],
        statuses: dict[str, ConsultationStatus],
        current: str | None = None,
    ) -> None:
        clear_layout(self._list)
        self.rows.clear()
        who = ", ".join(x for x in (clinician.name, clinician.specialty) if x)
        self.subtitle.setText(f"{date.today():%A %d %B %Y}  ·  {who}")
        if not patients:
            self._list.addWidget(notice("No appointments are booked for today.", "info"))
        signed = 0
        for p in sorted(patients, key=lambda p: p.appointment_time):
            status = statuses.get(p.id, ConsultationStatus.WAITING)
            signed += status == ConsultationStatus.SIGNED_OFF
            row = PatientRow(p, status)
            row.activated.connect(self.open_patient)
            row.set_current(p.id == current)
            self.rows[p.id] = row
            self._list.addWidget(row)
        self.counts.setText(f"{len(patients)} patients  ·  {signed} signed off")
        if self.rows:
            target = self.rows.get(current or "") or next(iter(self.rows.values()))
            target.setFocus()
