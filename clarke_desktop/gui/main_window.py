"""The main window: sidebar, header with model and microphone status, the screens, and the
controller logic that moves a consultation from the clinic list to a signed letter.

Every backend call goes through `TaskRunner` (tasks.py); callbacks run on the GUI thread.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.cancel import Cancelled
from clarke_desktop.gui.screens.assistant import AssistantPanel
from clarke_desktop.gui.screens.consultation import ConsultationScreen, fmt_elapsed
from clarke_desktop.gui.screens.dashboard import DashboardScreen
from clarke_desktop.gui.screens.patient import PatientScreen
from clarke_desktop.gui.screens.processing import ProcessingScreen
from clarke_desktop.gui.screens.review import ReviewScreen
from clarke_desktop.gui.screens.settings import DiagnosticsScreen, SettingsScreen
from clarke_desktop.gui.screens.signed import SignedOffScreen, render_pdf_pages
from clarke_desktop.gui.tasks import TaskRunner, TaskState
from clarke_desktop.gui.widgets import badge, label, set_badge
from clarke_desktop.schemas import (
    ClinicalDocument,
    ClinicPatient,
    ConsultationStatus,
    PatientContext,
    PipelineProgress,
    Resolution,
    Transcript,
)
from clarke_desktop.session.recording import RecordingSession
from clarke_desktop.session.views import (
    AppSettings,
    AsrStatus,
    Backend,
    MicStatus,
    ModelStatus,
    SectionEvent,
)

log = logging.getLogger(__name__)

PAGES = ("dashboard", "patient", "consultation", "processing", "review", "signed", "settings", "diagnostics")
NAV = (
    ("dashboard", "Today's clinic", "Ctrl+1"),
    ("patient", "Patient record", "Ctrl+2"),
    ("consultation", "Consultation", "Ctrl+3"),
    ("letter", "Letter", "Ctrl+4"),
    ("settings", "Settings", None),
    ("diagnostics", "Diagnostics", None),
)


def progress_slot(ev: Any) -> Any:
    """What a progress report updates: streamed text of one section, or the stage display."""
    if isinstance(ev, SectionEvent):
        return ("section", ev.key, ev.done)  # a section's final text is never replaced by a partial
    if isinstance(ev, PipelineProgress):
        return ("stage", ev.stage)
    return ("other", id(ev))


def user_message(exc: BaseException) -> str:
    """A clinician-safe message: our errors carry one; anything else gets a generic sentence."""
    message = getattr(exc, "message", None)  # errors that carry their own user-facing message
    if isinstance(message, str) and message.strip():
        return message.strip()
    text = str(exc).strip()
    known = ("Error", "Missing", "Unavailable", "NotFound", "Invalid", "Required", "Unresolved", "Cancelled")
    if text and any(k in type(exc).__name__ for k in known):
        return text
    if isinstance(exc, (FileNotFoundError, PermissionError, ValueError)) and text:
        return text
    return f"Something went wrong ({type(exc).__name__}). Details are in the log."


class MainWindow(QMainWindow):
    def __init__(self, backend: Backend, runner: TaskRunner) -> None:
        super().__init__()
        self.backend = backend
        self.runner = runner
        self.setWindowTitle("Clarke Desktop")
        self.setMinimumSize(1024, 640)
        # flow state
        self.patients: dict[str, ClinicPatient] = {}
        self.statuses: dict[str, ConsultationStatus] = {}
        self.patient: ClinicPatient | None = None
        self.context: PatientContext | None = None
        self.consultation_id: str | None = None
        self.transcript: Transcript | None = None
        self.document: ClinicalDocument | None = None
        self.recording: RecordingSession | None = None
        self.model_status: ModelStatus | None = None
        self.mics = MicStatus([], "Checking microphones…")
        self.asr = AsrStatus(False, "Checking the transcription model…")
        self._pipeline = None
        self._pipeline_started = 0.0
        self._highlight: str | None = None  # the next patient, after a sign-off
        self._consented: set[str] = set()  # consultations whose recording consent was confirmed
        self._build()
        self._shortcuts()
        self.poll = QTimer(self)
        self.poll.setInterval(100)
        self.poll.timeout.connect(self._poll)
        self.poll.start()
        self.show_page("dashboard")
        self.refresh_all()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QWidget()
        row = QHBoxLayout(root)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self._sidebar())
        main = QWidget()
        col = QVBoxLayout(main)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self._header())
        self.demo_banner = QLabel(
            "⚠  Demo model — not for clinical use. The embedded model mostly writes junk, which is "
            "refused (the section stays empty, with the reason); install MedGemma for real letters."
        )
        self.demo_banner.setObjectName("demoBanner")
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setAccessibleName("Warning: demo model, not for clinical use")
        self.demo_banner.hide()
        col.addWidget(self.demo_banner)
        self.stack = QStackedWidget()
        self.dashboard = DashboardScreen()
        self.patient_screen = PatientScreen()
        self.consultation = ConsultationScreen()
        self.processing = ProcessingScreen()
        self.review = ReviewScreen()
        self.signed = SignedOffScreen()
        self.settings_screen = SettingsScreen()
        self.diagnostics = DiagnosticsScreen()
        self.pages = dict(
            zip(
                PAGES,
                (
                    self.dashboard,
                    self.patient_screen,
                    self.consultation,
                    self.processing,
                    self.review,
                    self.signed,
                    self.settings_screen,
                    self.diagnostics,
                ),
                strict=True,
            )
        )
        for w in self.pages.values():
            self.stack.addWidget(w)
        col.addWidget(self.stack, 1)
        row.addWidget(main, 1)
        self.setCentralWidget(root)

        self.assistant = AssistantPanel()
        self.assistant_dock = QDockWidget("Chart assistant", self)
        self.assistant_dock.setObjectName("assistantDock")
        self.assistant_dock.setWidget(self.assistant)
        self.assistant_dock.setAllowedAreas(Qt.DockWidgetArea.RightDockWidgetArea)
        self.assistant_dock.setMinimumWidth(340)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.assistant_dock)
        self.assistant_dock.hide()
        self.assistant_dock.visibilityChanged.connect(lambda v: self.assistant_button.setChecked(v))

        d = self.dashboard
        d.open_patient.connect(self.open_patient)
        p = self.patient_screen
        p.back.connect(lambda: self.show_page("dashboard"))
        p.start_consultation.connect(self.begin_consultation)
        c = self.consultation
        c.record.connect(self.record)
        c.pause.connect(self.pause_recording)
        c.stop.connect(self.stop_recording)
        c.import_audio.connect(self.import_audio)
        c.use_demo_transcript.connect(self.use_demo_transcript)
        c.open_transcript.connect(self.open_transcript)
        c.generate.connect(self.generate)
        c.back.connect(lambda: self.show_page("patient"))
        pr = self.processing
        pr.cancel.connect(self.cancel_pipeline)
        pr.retry.connect(self.generate)
        pr.back.connect(lambda: self.show_page("consultation"))
        r = self.review
        r.section_edited.connect(self.save_section)
        r.regenerate_section.connect(self.regenerate_section)
        r.resolve.connect(self.resolve_discrepancy)
        r.sign_off.connect(self.sign_off)
        r.change_doc_type.connect(self.change_doc_type)
        r.discard.connect(self.discard_draft)
        self.signed.next_patient.connect(self.next_patient)
        self.settings_screen.save.connect(self.save_settings)
        self.diagnostics.refresh.connect(self.run_diagnostics)
        self.assistant.ask.connect(self.ask_assistant)
        self.assistant.decide.connect(self.decide_proposal)

    def _sidebar(self) -> QWidget:
        side = QWidget()
        side.setObjectName("sidebar")
        side.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side.setFixedWidth(210)
        lay = QVBoxLayout(side)
        lay.setContentsMargins(0, 18, 0, 14)
        lay.setSpacing(2)
        brand = QHBoxLayout()
        brand.setContentsMargins(18, 0, 12, 14)
        mark = QLabel("◆")
        mark.setObjectName("brandMark")
        name = QLabel("Clarke")
        name.setObjectName("brand")
        brand.addWidget(mark)
        brand.addWidget(name)
        brand.addStretch(1)
        lay.addLayout(brand)
        self.nav_group = QButtonGroup(self)
        self.nav_group.setExclusive(True)
        self.nav: dict[str, QPushButton] = {}
        for key, text, keys in NAV:
            b = QPushButton(text)
            b.setObjectName("navButton")
            b.setCheckable(True)
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.setAccessibleName(f"Go to {text}")
            if keys:
                b.setToolTip(keys)
            b.clicked.connect(lambda _c=False, k=key: self.navigate(k))
            self.nav_group.addButton(b)
            self.nav[key] = b
            lay.addWidget(b)
        lay.addSpacing(10)
        self.assistant_button = QPushButton("Chart assistant")
        self.assistant_button.setObjectName("navButton")
        self.assistant_button.setCheckable(True)
        self.assistant_button.setToolTip("Ctrl+J")
        self.assistant_button.setAccessibleName("Show chart assistant")
        self.assistant_button.clicked.connect(self.toggle_assistant)
        lay.addWidget(self.assistant_button)
        lay.addStretch(1)
        self.sidebar_clinician = QLabel("")
        self.sidebar_clinician.setObjectName("sidebarCaption")
        self.sidebar_clinician.setWordWrap(True)
        self.sidebar_clinician.setContentsMargins(18, 0, 12, 0)
        lay.addWidget(self.sidebar_clinician)
        offline = QLabel("Offline · data stays on this computer")
        offline.setObjectName("sidebarCaption")
        offline.setWordWrap(True)
        offline.setContentsMargins(18, 4, 12, 0)
        lay.addWidget(offline)
        return side

    def _header(self) -> QWidget:
        head = QWidget()
        head.setObjectName("header")
        head.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(head)
        row.setContentsMargins(24, 10, 18, 10)
        row.setSpacing(10)
        self.header_title = label("", "h3")
        self.header_title.setMinimumWidth(120)
        self.header_title.setAccessibleName("Current patient")
        row.addWidget(self.header_title, 1)
        self.model_badge = badge("Models: checking…", "neutral")
        self.asr_badge = badge("Transcription: checking…", "neutral")
        self.mic_badge = badge("Microphone: checking…", "neutral")
        for b in (self.model_badge, self.asr_badge, self.mic_badge):
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            row.addWidget(b)
        self.model_badge.mousePressEvent = lambda _e: self.navigate("settings")  # type: ignore[method-assign]
        self.asr_badge.mousePressEvent = lambda _e: self.navigate("settings")  # type: ignore[method-assign]
        self.mic_badge.mousePressEvent = lambda _e: self.navigate("settings")  # type: ignore[method-assign]
        return head

    def _shortcuts(self) -> None:
        def sc(keys: str, fn: Any) -> None:
            s = QShortcut(QKeySequence(keys), self)
            s.setContext(Qt.ShortcutContext.WindowShortcut)
            s.activated.connect(fn)

        sc("Ctrl+R", self._shortcut_record)
        sc("Ctrl+P", lambda: self.current_page() == "consultation" and self.pause_recording())
        sc("Ctrl+E", lambda: self.current_page() == "consultation" and self.stop_recording())
        sc(
            "Ctrl+Return",
            lambda: (
                self.current_page() == "consultation"
                and self.consultation.generate_button.isEnabled()
                and self.generate()
            ),
        )
        sc(
            "Ctrl+Shift+S",
            lambda: (
                self.current_page() == "review" and self.review.sign_button.isEnabled() and self.sign_off()
            ),
        )
        sc("Ctrl+N", lambda: self.current_page() == "signed" and self.next_patient())
        sc("Ctrl+J", self.toggle_assistant)
        sc("Ctrl+1", lambda: self.navigate("dashboard"))
        sc("Ctrl+2", lambda: self.navigate("patient"))
        sc("Ctrl+3", lambda: self.navigate("consultation"))
        sc("Ctrl+4", lambda: self.navigate("letter"))
        sc("F5", self.refresh_all)
        sc("Ctrl+F", self._find_patient)
        sc("Escape", lambda: self.current_page() == "processing" and self.cancel_pipeline())

    def _find_patient(self) -> None:
        self.navigate("dashboard")
        self.dashboard.search.setFocus()
        self.dashboard.search.selectAll()

    # ------------------------------------------------------------------ navigation
    def current_page(self) -> str:
        w = self.stack.currentWidget()
        return next(k for k, v in self.pages.items() if v is w)

    def show_page(self, page: str) -> None:
        self.stack.setCurrentWidget(self.pages[page])
        nav_key = "letter" if page in ("processing", "review", "signed") else page
        if nav_key in self.nav:
            self.nav[nav_key].setChecked(True)
        self._update_nav()

    def navigate(self, key: str) -> None:
        if key == "letter":
            signed = (
                self.patient is not None
                and self.statuses.get(self.patient.id) == ConsultationStatus.SIGNED_OFF
            )
            if signed and self.signed.result is not None:
                self.show_page("signed")
            elif self.document is not None or self.review.cards:
                self.show_page("review")
            elif self._pipeline is not None:
                self.show_page("processing")
            return
        if key in ("patient", "consultation") and self.patient is None:
            return
        if key == "settings":
            self.load_settings()
        if key == "diagnostics":
            self.run_diagnostics()
        if key == "dashboard":
            self.refresh_clinic()
        self.show_page(key)

    def _update_nav(self) -> None:
        has_patient = self.patient is not None
        self.nav["patient"].setEnabled(has_patient)
        self.nav["consultation"].setEnabled(has_patient)
        self.nav["letter"].setEnabled(self.document is not None or self._pipeline is not None)
        if self.patient:
            self.header_title.setText(f"{self.patient.name}  ·  NHS {self.patient.nhs_number}")
            self.header_title.setToolTip(self.header_title.text())
        else:
            self.header_title.setText("No patient open")

    def toggle_assistant(self) -> None:
        self.assistant_dock.setVisible(not self.assistant_dock.isVisible())

    def _update_demo_banner(self) -> None:
        demo_doc = bool(self.document and self.document.model and self.document.model.demo)
        demo_engine = bool(self.model_status and self.model_status.kind == "demo")
        self.demo_banner.setVisible(demo_doc or demo_engine)

    # ------------------------------------------------------------------ recovery at start
    def offer_recovery(self) -> None:
        """After a crash: say what was interrupted (drafts, recordings, letters not yet in the
        record) and recover it when the clinician agrees. Nothing is changed without asking."""

        def found(work: dict[str, list[dict[str, Any]]]) -> None:
            counts = [(len(work["drafts"]), "letter draft"), (len(work["recordings"]), "recording"),
                      (len(work["writebacks"]), "signed letter not yet in the record")]  # fmt: skip
            what = ", ".join(
                f"{n} {noun}{'s' if n > 1 and not noun.startswith('signed') else ''}"
                for n, noun in counts
                if n
            )
            if not what:
                return
            answer = QMessageBox.question(
                self, "Recover interrupted work",
                f"Clarke was interrupted last time. Found: {what}.\n\nRecover it now? Drafts go back to review "
                "with every autosaved edit; recordings are converted and attached to their consultation.",
            )  # fmt: skip
            if answer == QMessageBox.StandardButton.Yes:
                self.runner.submit(
                    lambda _s: self.backend.interrupted_work(recover=True),
                    on_result=lambda _r: self.refresh_clinic(),
                    on_error=lambda e: QMessageBox.warning(self, "Recovery", user_message(e)),
                    key="recover",
                )

        self.runner.submit(lambda _s: self.backend.interrupted_work(), on_result=found, key="recover")

    # ------------------------------------------------------------------ status refresh
    def refresh_all(self) -> None:
        self.refresh_clinic()
        self.runner.submit(
            lambda s: self.backend.model_status(),
            on_result=self.set_model_status,
            on_error=lambda e: self.set_model_status(None, e),
            key="models",
        )
        self.runner.submit(
            lambda s: (self.backend.microphones(), self.backend.asr_status()),
            on_result=lambda r: self.set_environment(*r),
            key="env",
        )

    def refresh_clinic(self) -> None:
        def work(_s: TaskState) -> Any:
            clinician, patients = self.backend.clinic()
            return clinician, patients, self.backend.statuses()

        def done(r: Any) -> None:
            clinician, patients, statuses = r
            self.patients = {p.id: p for p in patients}
            self.statuses = statuses
            self.sidebar_clinician.setText(f"{clinician.name}\n{clinician.specialty}".strip())
            self.dashboard.set_clinic(
                clinician, patients, statuses, self.patient.id if self.patient else self._highlight
            )

        self.runner.submit(
            work, on_result=done, on_error=lambda e: self.dashboard.show_error(user_message(e)), key="clinic"
        )

    def set_model_status(self, status: ModelStatus | None, error: BaseException | None = None) -> None:
        self.model_status = status
        if status is None:
            set_badge(self.model_badge, "Models: could not check", "bad")
            self.model_badge.setToolTip(user_message(error) if error else "")
        else:
            tone = {"medgemma": "ok", "demo": "demo", "missing": "bad"}[status.kind]
            set_badge(self.model_badge, status.label, tone, f"Model status: {status.label}")
            self.model_badge.setToolTip(
                "\n".join(f"{m.role}: {m.name} — {m.state} {m.device}" for m in status.models)
            )
            self.settings_screen.set_models(status)
        self._update_demo_banner()

    def set_environment(self, mics: MicStatus, asr: AsrStatus) -> None:
        self.mics, self.asr = mics, asr
        if mics.available:
            default = next((d for d in mics.devices if d.is_default), mics.devices[0])
            set_badge(self.mic_badge, f"Mic: {default.name[:24]}", "ok", f"Microphone: {default.label}")
        else:
            set_badge(self.mic_badge, "No microphone", "neutral", "No microphone connected")
        self.mic_badge.setToolTip(mics.message or "")
        if asr.installed:
            set_badge(self.asr_badge, "MedASR ready", "ok", "Transcription model ready")
        else:
            set_badge(self.asr_badge, "No MedASR", "warn", "Transcription model not installed")
        self.asr_badge.setToolTip(asr.message)
        self.consultation.set_environment(mics, asr)

    # ------------------------------------------------------------------ patient
    def open_patient(self, patient_id: str) -> None:
        if self._pipeline is not None and self.patient is not None and self.patient.id != patient_id:
            answer = QMessageBox.question(
                self,
                "Letter being written",
                f"A letter for {self.patient.name} is still being written. Stop it and open another patient?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.cancel_pipeline()
            self._pipeline = None
        if self.recording is not None:
            QMessageBox.information(
                self, "Recording", "Stop the current recording before opening another patient."
            )
            return
        patient = self.patients.get(patient_id)
        if patient is None:
            return
        if self.patient is None or self.patient.id != patient_id:
            self._reset_flow()
        self.patient = patient
        self.assistant.set_patient(patient.name)
        self._update_nav()
        self.show_page("patient")
        if self.context is not None and self.context.patient_id == patient_id:
            return
        self.patient_screen.show_loading(patient.name)

        def work(s: TaskState) -> Any:
            cid = self.backend.start_consultation(patient_id)
            ctx = self.backend.patient_context(patient_id, s.cancel)
            return cid, ctx

        def done(r: Any) -> None:
            self.consultation_id, self.context = r
            self.patient_screen.set_context(self.context)
            self.consultation.reset(self.context, patient.name)

        def failed(e: BaseException) -> None:
            if isinstance(e, Cancelled):
                return
            self.patient_screen.show_error(patient.name, user_message(e))
            self.consultation.reset(None, patient.name)
            if self.consultation_id is None:
                self.runner.submit(
                    lambda s: self.backend.start_consultation(patient_id),
                    on_result=lambda cid: setattr(self, "consultation_id", cid),
                )

        self.runner.submit(work, on_result=done, on_error=failed, key="context")

    def _reset_flow(self) -> None:
        self.context = None
        self.consultation_id = None
        self.transcript = None
        self.document = None
        self.signed.result = None
        self._update_demo_banner()

    def begin_consultation(self) -> None:
        if self.patient is None:
            return
        if not self.consultation.transcript.toPlainText() and self.context is None:
            self.consultation.reset(None, self.patient.name)
        self.show_page("consultation")

    def _shortcut_record(self) -> None:
        page = self.current_page()
        if page == "patient" and self.patient_screen.start_button.isEnabled():
            self.begin_consultation()
        elif page == "consultation" and self.consultation.record_button.isEnabled():
            self.record()

    # ------------------------------------------------------------------ recording
    def record(self) -> None:
        if self.consultation_id is None:
            return
        if self.recording is not None:  # resume after pause
            self.recording.resume()
            self.consultation.set_state("recording")
            return
        if self.consultation_id not in self._consented:
            answer = QMessageBox.question(
                self,
                "Consent to record",
                "Has the patient agreed to this consultation being recorded?\n\n"
                "The recording stays on this computer and is deleted after the retention period.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        device = self.consultation.selected_mic()
        cid = self.consultation_id

        def work(_s: TaskState) -> RecordingSession:
            self.backend.confirm_consent(cid)
            self._consented.add(cid)
            session = self.backend.start_recording(cid, device if hasattr(device, "host_api") else None)
            session.start()
            return session

        def started(session: RecordingSession) -> None:
            self.recording = session
            self.consultation.set_state("recording")
            self.consultation.transcript.clear()

        def failed(e: BaseException) -> None:
            self.consultation.set_state("idle")
            QMessageBox.warning(self, "Microphone", user_message(e))

        self.consultation.record_button.setEnabled(False)
        self.runner.submit(work, on_result=started, on_error=failed, lane="audio")

    def pause_recording(self) -> None:
        if self.recording is not None and self.consultation.state == "recording":
            self.recording.pause()
            self.consultation.set_state("paused")

    def stop_recording(self) -> None:
        session = self.recording
        if session is None or self.consultation_id is None:
            return
        cid = self.consultation_id
        self.consultation.set_state("transcribing")

        def work(s: TaskState) -> Transcript:
            wav, duration, live = session.stop()
            return self.backend.recording_stopped(cid, wav, live, s.cancel, duration_s=duration)

        def done(t: Transcript) -> None:
            self.recording = None
            self.set_transcript(t)

        def failed(e: BaseException) -> None:
            self.recording = None
            self.consultation.set_state("stopped")
            QMessageBox.warning(self, "Recording", user_message(e))

        self.runner.submit(work, on_result=done, on_error=failed, lane="audio")

    def _poll(self) -> None:
        if self.recording is not None and self.consultation.state in ("recording", "paused"):
            self.consultation.timer.setText(fmt_elapsed(self.recording.elapsed_s))
            self.consultation.level.setValue(int(self.recording.level * 100))
            live = self.recording.live_text
            if live and live != self.consultation.transcript.toPlainText():
                self.consultation.transcript.setPlainText(live)
        if self._pipeline is not None and self.current_page() == "processing":
            self.processing.set_elapsed(time.monotonic() - self._pipeline_started)

    def set_transcript(self, t: Transcript) -> None:
        self.transcript = t
        self.consultation.transcript.setPlainText(t.text)
        info = f"{t.word_count} words"
        if t.duration_s:
            info += f" · {fmt_elapsed(t.duration_s)} of audio"
        if t.provider:
            info += f" · {t.model or 'ASR'} on {t.provider}"
        self.consultation.transcript_info.setText(info)
        self.consultation.set_state("stopped" if t.origin == "asr" else "idle")

    def import_audio(self) -> None:
        if self.consultation_id is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import consultation audio",
            str(Path.home()),
            "Audio (*.wav *.flac *.ogg *.mp3 *.m4a);;All files (*)",
        )
        if path:
            self.import_audio_file(Path(path))

    def import_audio_file(self, path: Path) -> None:
        cid = self.consultation_id
        assert cid is not None
        self.consultation.set_state("transcribing")
        self.consultation.transcript_info.setText(f"Transcribing {path.name}…")

        def work(s: TaskState) -> Transcript:
            return self.backend.transcript_from_audio(
                cid, path, lambda pct, msg: s.progress((pct, msg), throttle_s=0.1), s.cancel
            )

        def failed(e: BaseException) -> None:
            self.consultation.set_state("idle")
            self.consultation.transcript_info.setText("")
            QMessageBox.warning(self, "Import audio", user_message(e))

        self.runner.submit(
            work,
            on_result=self.set_transcript,
            on_error=failed,
            lane="audio",
            on_progress=lambda p: self.consultation.transcript_info.setText(f"{p[1]} ({p[0]}%)"),
        )

    def open_transcript(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a transcript", str(Path.home()), "Text (*.txt);;All files (*)"
        )
        if path:
            self.load_transcript_file(Path(path))

    def load_transcript_file(self, path: Path) -> None:
        def work(_s: TaskState) -> str:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and retry."
                ) from exc
            if not text.strip():
                raise ValueError(f"{path} is empty.")
            return text.strip()

        def done(text: str) -> None:
            self.transcript = None
            self.consultation.transcript.setPlainText(text)
            self.consultation.transcript_info.setText(f"Transcript from {path.name}")

        self.runner.submit(
            work,
            on_result=done,
            on_error=lambda e: QMessageBox.warning(self, "Open transcript", user_message(e)),
        )

    def use_demo_transcript(self) -> None:
        if self.patient is None:
            return
        pid = self.patient.id

        def work(_s: TaskState) -> str:
            path = self.backend.demo_transcript_path(pid)
            if path is None:
                raise FileNotFoundError("There is no demo consultation for this patient.")
            return Path(path).read_text(encoding="utf-8")

        def done(text: str) -> None:
            self.consultation.transcript.setPlainText(text)
            self.consultation.transcript_info.setText("Demo consultation transcript (typed, not recorded)")

        self.runner.submit(
            work,
            on_result=done,
            on_error=lambda e: QMessageBox.information(self, "Demo consultation", user_message(e)),
        )

    # ------------------------------------------------------------------ letter
    def generate(self, doc_type: str | None = None) -> None:
        if self.consultation_id is None or self.patient is None:
            return
        text = self.consultation.transcript.toPlainText().strip()
        if not text:
            return
        doc_type = doc_type or self.consultation.doc_type.currentData()
        aside = self.consultation.aside.toPlainText().strip()
        cid, name, doc_patient = self.consultation_id, self.patient.name, self.patient.id
        known = self.transcript if (self.transcript and self.transcript.text.strip() == text) else None
        self.document = None
        self._update_demo_banner()
        self.processing.reset()
        self.review.start(self.context, name, known or Transcript(text=text, origin="typed"), doc_type)
        self.statuses[self.patient.id] = ConsultationStatus.PROCESSING
        self._pipeline_started = time.monotonic()
        self.show_page("processing")

        def work(s: TaskState) -> ClinicalDocument:
            transcript = known or self.backend.transcript_from_text(cid, text)
            s.progress(("transcript", transcript))
            return self.backend.generate(
                cid, transcript, aside, doc_type, lambda ev: s.progress(ev), s.cancel
            )

        def current() -> bool:  # the clinician may have moved on to another patient
            return self.consultation_id == cid

        def progress(ev: Any) -> None:
            if not current():
                return
            if isinstance(ev, tuple) and ev[0] == "transcript":
                self.transcript = ev[1]
                self.review.transcript_view.setPlainText(ev[1].text)
            elif isinstance(ev, tuple) and ev[0] == "context":
                if ev[1].demographics.name:  # not the empty transcript-only context
                    self.context = ev[1]
                    self.patient_screen.set_context(ev[1])
            elif isinstance(ev, PipelineProgress):
                self.processing.on_progress(ev)
            elif isinstance(ev, SectionEvent):
                self.review.on_section_event(ev)
                if self.current_page() == "processing":
                    self.show_page("review")  # watch the letter stream in

        def done(doc: ClinicalDocument) -> None:
            self._pipeline = None
            if not current():
                return
            self.document = doc
            self.review.set_document(doc)
            self.statuses[doc_patient] = ConsultationStatus.REVIEW
            self._update_demo_banner()
            self._update_nav()
            self.show_page("review")

        def failed(e: BaseException) -> None:
            self._pipeline = None
            if not current():
                return
            cancelled = isinstance(e, Cancelled)
            self.processing.fail(user_message(e), cancelled=cancelled)
            self.review.generation_failed("Cancelled." if cancelled else user_message(e))
            self.show_page("processing")
            self._update_nav()

        self._pipeline = self.runner.submit(
            work,
            on_result=done,
            on_error=failed,
            on_progress=progress,
            lane="llm",
            key="pipeline",
            coalesce=progress_slot,
        )
        self._update_nav()

    def cancel_pipeline(self) -> None:
        if self._pipeline is not None:
            self._pipeline.cancel()
            self.processing.cancel_button.setEnabled(False)

    def change_doc_type(self, doc_type: str) -> None:
        if self.document is not None and doc_type == self.document.doc_type:
            return
        answer = QMessageBox.question(
            self,
            "Change document type",
            "Write a new draft as this document type? Your edits to the current draft are kept in its history.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            i = self.consultation.doc_type.findData(doc_type)
            self.consultation.doc_type.setCurrentIndex(i)
            self.generate(doc_type)
        elif self.document is not None:
            self.review.doc_type.setCurrentIndex(self.review.doc_type.findData(self.document.doc_type))

    def discard_draft(self) -> None:
        answer = QMessageBox.question(
            self, "Discard draft", "Discard this draft and go back to the consultation?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.document = None
            self._update_demo_banner()
            self._update_nav()
            self.show_page("consultation")

    def save_section(self, key: str, content: str) -> None:
        cid = self.consultation_id
        if cid is None:
            return
        if self.document is not None:
            for s in self.document.sections:
                if s.key == key:
                    s.content = content
        self.runner.submit(
            lambda _s: self.backend.save_section(cid, key, content),
            lane="db",
            on_error=lambda e: self.review.progress_note.setText(f"Edit not saved: {user_message(e)}"),
        )

    def regenerate_section(self, key: str, instruction: str) -> None:
        if self.document is None or self.consultation_id is None:
            return
        self.review.flush_edits()
        doc = self.review.current_document()
        cid = self.consultation_id
        self.review.mark_regenerating(key)

        def progress(ev: Any) -> None:
            if isinstance(ev, SectionEvent) and ev.key == key and self.consultation_id == cid:
                self.review.on_section_event(ev)

        def done(new_doc: ClinicalDocument) -> None:
            if self.consultation_id != cid:
                return
            self.review.replace_section(new_doc, key)
            self.document = self.review.document

        def failed(e: BaseException) -> None:
            if self.consultation_id == cid:
                self.review.section_failed(key, user_message(e))

        self.runner.submit(
            lambda s: self.backend.regenerate_section(
                cid, doc, key, instruction, lambda ev: s.progress(ev), s.cancel
            ),
            on_result=done,
            on_error=failed,
            on_progress=progress,
            lane="llm",
            key=f"regen:{key}",
            coalesce=progress_slot,
        )

    def resolve_discrepancy(self, discrepancy_id: str, res: Resolution) -> None:
        cid = self.consultation_id
        if cid is None:
            return
        self.runner.submit(
            lambda _s: self.backend.resolve_discrepancy(cid, discrepancy_id, res),
            lane="db",
            on_result=lambda _r: self.review.mark_resolved(discrepancy_id, res),
            on_error=lambda e: QMessageBox.warning(self, "Discrepancy", user_message(e)),
        )

    def sign_off(self) -> None:
        if self.consultation_id is None or self.patient is None or self.review.blockers():
            return
        self.review.flush_edits()
        doc = self.review.current_document()
        if doc is None:
            return
        cid, patient = self.consultation_id, self.patient
        self.review.sign_button.setEnabled(False)
        self.review.progress_note.setText("Signing off, writing the PDF and the record…")

        def work(_s: TaskState) -> Any:
            self.runner.wait_lane("db")  # edits and resolutions are saved before signing
            return self.backend.sign_off(cid, doc)

        def done(result: Any) -> None:
            self.statuses[patient.id] = ConsultationStatus.SIGNED_OFF
            self.signed.set_result(result, patient.name)
            self.show_page("signed")
            self.runner.submit(
                lambda _s: render_pdf_pages(result.pdf_path),
                key="pdf-preview",
                on_result=lambda r: self.signed.set_pages(*r),
                on_error=lambda e: self.signed.preview_failed(user_message(e)),
            )

        def failed(e: BaseException) -> None:
            self.review.progress_note.setText("")
            self.review._refresh()
            QMessageBox.warning(self, "Sign off", user_message(e))

        self.runner.submit(work, on_result=done, on_error=failed, key="signoff")

    def next_patient(self) -> None:
        done_id = self.patient.id if self.patient else None
        order = sorted(self.patients.values(), key=lambda p: p.appointment_time)
        ids = [p.id for p in order]
        nxt = None
        if done_id in ids:
            for p in order[ids.index(done_id) + 1 :] + order[: ids.index(done_id)]:
                if self.statuses.get(p.id, ConsultationStatus.WAITING) != ConsultationStatus.SIGNED_OFF:
                    nxt = p
                    break
        self.patient = None
        self._reset_flow()
        self._highlight = None
        self.assistant.set_patient(None)
        self._update_nav()
        self.refresh_clinic()
        self.show_page("dashboard")
        self._highlight = nxt.id if nxt is not None else None

    # ------------------------------------------------------------------ assistant
    def ask_assistant(self, question: str) -> None:
        if self.patient is None:
            return
        pid = self.patient.id
        self.runner.submit(
            lambda s: self.backend.ask_assistant(pid, question, lambda st: s.progress(st), s.cancel),
            on_progress=self.assistant.add_step,
            on_result=self.assistant.set_answer,
            on_error=lambda e: self.assistant.set_failed(user_message(e)),
            lane="llm",
            key="assistant",
        )

    def decide_proposal(self, proposal_id: str, approve: bool) -> None:
        if self.patient is None:
            return
        pid = self.patient.id
        self.runner.submit(
            lambda _s: self.backend.decide_proposal(pid, proposal_id, approve),
            lane="db",
            on_result=self.assistant.proposal_decided,
            on_error=lambda e: self.assistant.set_failed(user_message(e)),
        )

    # ------------------------------------------------------------------ settings / diagnostics
    def load_settings(self) -> None:
        self.runner.submit(
            lambda _s: self.backend.settings(),
            on_result=lambda s: self.settings_screen.set_values(s, self.mics),
            on_error=lambda e: self.settings_screen.saved_ok(False, user_message(e)),
        )

    def save_settings(self, s: AppSettings) -> None:
        self.runner.submit(
            lambda _s: self.backend.save_settings(s),
            lane="db",
            on_result=lambda _r: (self.settings_screen.saved_ok(True), self.refresh_all()),
            on_error=lambda e: self.settings_screen.saved_ok(False, user_message(e)),
        )

    def run_diagnostics(self) -> None:
        self.diagnostics.show_running()
        self.runner.submit(
            lambda _s: self.backend.diagnostics(),
            on_result=self.diagnostics.set_checks,
            on_error=lambda e: self.diagnostics.set_failed(user_message(e)),
            key="diagnostics",
        )

    # ------------------------------------------------------------------ shutdown
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.recording is not None:
            answer = QMessageBox.question(
                self, "Recording in progress", "A recording is in progress. Stop it and close Clarke?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            try:
                self.recording.stop()
            except Exception:
                log.exception("stopping the recording at exit failed")
            self.recording = None
        self.review.flush_edits()
        self.poll.stop()
        event.accept()
