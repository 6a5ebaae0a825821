"""Dashboard: today's clinic, one row per appointment, with its consultation status."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.gui.widgets import badge, button, clear_layout, label, notice, repolish, scroll_page, vbox
from clarke_desktop.schemas import Clinician, ClinicPatient, ConsultationStatus
from clarke_desktop.session.views import Unfinished
from clarke_desktop.uk_format import local_time

STATUS_LOOK: dict[ConsultationStatus, tuple[str, str]] = {
    ConsultationStatus.WAITING: ("Waiting", "neutral"),
    ConsultationStatus.RECORDING: ("Recording", "rec"),
    ConsultationStatus.PAUSED: ("Paused", "rec"),
    ConsultationStatus.PROCESSING: ("In progress", "info"),
    ConsultationStatus.REVIEW: ("Draft to review", "warn"),
    ConsultationStatus.SIGNED_OFF: ("Signed off ✓", "ok"),
}


class PatientRow(QFrame):
    """One appointment; click or Enter opens the patient; Up and Down move between rows."""

    activated = Signal(str)
    step = Signal(str, int)  # patient id, -1 up / +1 down

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
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.step.emit(self.patient.id, -1 if event.key() == Qt.Key.Key_Up else 1)
            return
        super().keyPressEvent(event)

    def matches(self, query: str) -> bool:
        """Name, NHS number (spaces ignored) or date of birth contain the query."""
        q = query.strip().lower()
        if not q:
            return True
        p = self.patient
        if "/" in q:  # a date of birth, or part of one
            return q in p.date_of_birth
        if q.replace(" ", "").isdigit():  # an NHS number, or part of one (spaces ignored)
            return q.replace(" ", "") in p.nhs_number.replace(" ", "")
        return q in p.name.lower()


class DashboardScreen(QWidget):
    open_patient = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, PatientRow] = {}
        outer = vbox(self, (0, 0, 0, 0))
        body = QWidget()
        self._lay = vbox(body, (28, 22, 28, 22), 10)
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
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find a patient: name, NHS number or date of birth (Ctrl+F)")
        self.search.setAccessibleName("Find a patient in today's clinic")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._open_only_match)
        self._lay.addWidget(self.search)
        # Drafts not signed off (today's or earlier): one click back into them.
        self._unfinished = vbox(None, (0, 0, 0, 0), 4)
        self._lay.addLayout(self._unfinished)
        self.unfinished_buttons: dict[str, QPushButton] = {}
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
        self._scroll = scroll_page(body)
        outer.addWidget(self._scroll)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def set_unfinished(self, items: list[Unfinished]) -> None:
        clear_layout(self._unfinished)
        self.unfinished_buttons.clear()
        if not items:
            return
        self._unfinished.addWidget(label(f"Unfinished ({len(items)})", "h3"))
        for u in items:
            look = STATUS_LOOK.get(u.status, ("", "neutral"))[0]
            when = local_time(u.updated_at)
            b = button(
                f"{u.patient_name}  ·  {look}  ·  last changed {when}",
                accessible=f"Open unfinished: {u.patient_name}",
            )
            b.setToolTip("Open the draft where you left it")
            b.clicked.connect(lambda _c=False, pid=u.patient_id: self.open_patient.emit(pid))
            self.unfinished_buttons[u.patient_id] = b
            self._unfinished.addWidget(b, 0, Qt.AlignmentFlag.AlignLeft)

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
        keep_scroll = (
            self._scroll.verticalScrollBar().value()
        )  # a refresh never moves the list under the mouse
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
            row.step.connect(self._step)
            row.set_current(p.id == current)
            self.rows[p.id] = row
            self._list.addWidget(row)
        self.counts.setText(f"{len(patients)} patients  ·  {signed} signed off")
        self._filter(self.search.text())
        if self.rows:
            target = self.rows.get(current or "") or next(iter(self.rows.values()))
            target.setFocus()
            QTimer.singleShot(0, lambda: self._restore(keep_scroll, target))

    def _restore(self, value: int, target: PatientRow) -> None:
        self._scroll.verticalScrollBar().setValue(value)
        self._scroll.ensureWidgetVisible(target)

    def _visible(self) -> list[PatientRow]:
        return [r for r in self.rows.values() if not r.isHidden()]

    def _filter(self, query: str) -> None:
        for row in self.rows.values():
            row.setVisible(row.matches(query))

    def _open_only_match(self) -> None:
        visible = self._visible()
        if len(visible) == 1:  # only an unambiguous match opens from the search box
            self.open_patient.emit(visible[0].patient.id)
        elif visible:
            visible[0].setFocus()

    def _step(self, patient_id: str, direction: int) -> None:
        visible = self._visible()
        ids = [r.patient.id for r in visible]
        if patient_id in ids:
            target = visible[max(0, min(len(visible) - 1, ids.index(patient_id) + direction))]
            target.setFocus()
            self._scroll.ensureWidgetVisible(target)
