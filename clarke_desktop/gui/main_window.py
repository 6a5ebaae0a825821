"""The main window: the sidebar, the header with the model and microphone badges, the screens,
navigation and shortcuts. The consultation's flow and every backend call live in the controller
(controller.py); the window follows its signals.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from clarke_desktop.gui.controller import ConsultationController, Screens, user_message
from clarke_desktop.gui.screens.assistant import AssistantPanel
from clarke_desktop.gui.screens.consultation import ConsultationScreen
from clarke_desktop.gui.screens.dashboard import DashboardScreen
from clarke_desktop.gui.screens.lock import IdleWatch, LockScreen
from clarke_desktop.gui.screens.patient import PatientScreen
from clarke_desktop.gui.screens.processing import ProcessingScreen
from clarke_desktop.gui.screens.review import ReviewScreen
from clarke_desktop.gui.screens.settings import DiagnosticsScreen, SettingsScreen
from clarke_desktop.gui.screens.signed import SignedOffScreen
from clarke_desktop.gui.tasks import TaskRunner
from clarke_desktop.gui.widgets import badge, enable, label, set_badge, vbox
from clarke_desktop.schemas import (
    ConsultationStatus,
)
from clarke_desktop.session.service import ConsultationService
from clarke_desktop.session.views import (
    AsrStatus,
    MicStatus,
    ModelStatus,
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


class MainWindow(QMainWindow):
    def __init__(self, backend: ConsultationService, runner: TaskRunner) -> None:
        super().__init__()
        self.backend = backend
        self.runner = runner
        account = getattr(backend, "account", None)
        self.setWindowTitle(f"Clarke Desktop — {account.display_name}" if account else "Clarke Desktop")
        self.setMinimumSize(1024, 640)
        self._build()
        self.flow = ConsultationController(
            backend,
            runner,
            Screens(
                self.dashboard, self.patient_screen, self.consultation, self.processing, self.review,
                self.signed, self.settings_screen, self.diagnostics, self.assistant,
            ),
            self,
            self.current_page,
        )  # fmt: skip
        self._connect()
        self._shortcuts()
        self._lock_screen = LockScreen(self)
        self._lock_screen.unlock.connect(self.flow.unlock)
        self.flow.unlocked.connect(self._unlocked)
        self.flow.unlock_failed.connect(self._lock_screen.failed)
        self.idle: IdleWatch | None = None
        if self.flow.accounts_in_use:
            self.idle = IdleWatch(self, getattr(backend, "idle_lock_minutes", 5))
            self.idle.idle.connect(lambda: self.lock("Locked after a time without use."))
        self.poll = QTimer(self)
        self.poll.setInterval(100)
        self.poll.timeout.connect(self.flow.tick)
        self.poll.start()
        self.show_page("dashboard")
        self.flow.refresh_all()

    def _build(self) -> None:
        root = QWidget()
        row = QHBoxLayout(root)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self._sidebar())
        main = QWidget()
        col = vbox(main, (0, 0, 0, 0), 0)
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
        # Servers found in the settings file that no administrator set are not used: say so.
        notice = getattr(self.backend, "settings_notice", None)
        self.settings_banner = QLabel(f"⚠  {notice}" if notice else "")
        self.settings_banner.setObjectName("demoBanner")
        self.settings_banner.setWordWrap(True)
        self.settings_banner.setAccessibleName("Warning: the configured servers are not used")
        self.settings_banner.setVisible(bool(notice))
        col.addWidget(self.settings_banner)
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

    def _connect(self) -> None:
        """Screens' intents go to the controller; its signals move the window."""
        flow, c, r = self.flow, self.consultation, self.review
        back_to = {self.patient_screen: "dashboard", c: "patient", self.processing: "consultation"}
        wiring = [
            (flow.page_wanted, self.show_page),
            (flow.flow_changed, self._flow_changed),
            (flow.models_checked, self.set_model_status),
            (flow.environment_checked, self.set_environment),
            (flow.clinician_loaded, self.sidebar_clinician.setText),
            (self.dashboard.open_patient, flow.open_patient),
            (self.patient_screen.start_consultation, flow.begin_consultation),
            (c.record, flow.record), (c.pause, flow.pause_recording), (c.stop, flow.stop_recording),
            (c.import_audio, flow.import_audio), (c.use_demo_transcript, flow.use_demo_transcript),
            (c.open_transcript, flow.open_transcript), (c.generate, flow.generate),
            (c.inputs_edited, flow.inputs_edited),
            (self.processing.cancel, flow.cancel_pipeline), (self.processing.retry, flow.generate),
            (r.section_edited, flow.save_section), (r.regenerate_section, flow.regenerate_section),
            (r.resolve, flow.resolve_discrepancy), (r.undo_resolution, flow.undo_resolution),
            (r.sign_off, flow.sign_off),
            (r.change_doc_type, flow.change_doc_type), (r.discard, flow.discard_draft),
            (self.signed.next_patient, flow.next_patient),
            (self.settings_screen.save, flow.save_settings),
            (self.diagnostics.refresh, flow.run_diagnostics),
            (self.diagnostics.export, flow.export_diagnostics),
            (self.assistant.ask, flow.ask_assistant), (self.assistant.decide, flow.decide_proposal),
        ]  # fmt: skip
        for signal, slot in wiring:
            signal.connect(slot)
        for screen, page in back_to.items():
            screen.back.connect(lambda page=page: self.show_page(page))

    def _sidebar(self) -> QWidget:
        side = QWidget()
        side.setObjectName("sidebar")
        side.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side.setFixedWidth(210)
        lay = vbox(side, (0, 18, 0, 14), 2)
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
        self._shortcut_list: list[QShortcut] = []

        def sc(keys: str, fn: Any) -> None:
            s = QShortcut(QKeySequence(keys), self)
            s.setContext(Qt.ShortcutContext.WindowShortcut)
            s.activated.connect(fn)
            self._shortcut_list.append(s)

        sc("Ctrl+L", lambda: self.lock("Locked."))
        flow, page = self.flow, self.current_page
        sc("Ctrl+R", self._shortcut_record)
        sc("Ctrl+P", lambda: page() == "consultation" and flow.pause_recording())
        sc("Ctrl+E", lambda: page() == "consultation" and flow.stop_recording())
        sc(
            "Ctrl+Return",
            lambda: page() == "consultation" and self.consultation.can_generate() and flow.generate(),
        )
        sc(
            "Ctrl+Shift+S",
            lambda: (
                page() == "review"
                and (flow.sign_off() if self.review.can_sign() else self.review.explain_blockers())
            ),
        )
        sc("Ctrl+N", lambda: page() == "signed" and flow.next_patient())
        sc("Ctrl+J", self.toggle_assistant)
        sc("Ctrl+1", lambda: self.navigate("dashboard"))
        sc("Ctrl+2", lambda: self.navigate("patient"))
        sc("Ctrl+3", lambda: self.navigate("consultation"))
        sc("Ctrl+4", lambda: self.navigate("letter"))
        sc("F5", flow.refresh_all)
        sc("Ctrl+F", self._find_patient)
        sc("Escape", lambda: page() == "processing" and flow.cancel_pipeline())

    def _find_patient(self) -> None:
        self.navigate("dashboard")
        self.dashboard.focus_search()

    def _shortcut_record(self) -> None:
        page = self.current_page()
        if page == "patient" and self.patient_screen.can_start():
            self.flow.begin_consultation()
        elif page == "consultation" and self.consultation.can_record():
            self.flow.record()

    # ------------------------------------------------------------------ lock
    def is_locked(self) -> bool:
        return self._lock_screen.isVisible()

    def lock(self, reason: str) -> None:
        """Hide every patient detail and turn every shortcut off until someone signs in."""
        account = getattr(self.backend, "account", None)
        if account is None or self.is_locked():
            return
        self.flow.lock(reason)
        for s in self._shortcut_list:
            s.setEnabled(False)
        self._dock_was_visible = self.assistant_dock.isVisible()
        self.assistant_dock.hide()
        if self.idle is not None:
            self.idle.pause()
        self._lock_screen.show_for(account.name, account.display_name, reason)

    def _unlocked(self, account: Any) -> None:
        self._lock_screen.hide()
        for s in self._shortcut_list:
            s.setEnabled(True)
        if getattr(self, "_dock_was_visible", False):
            self.assistant_dock.show()
        if self.idle is not None:
            self.idle.resume()
        self.setWindowTitle(f"Clarke Desktop — {account.display_name}")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self._lock_screen.isVisible():
            self._lock_screen.setGeometry(self.rect())

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
        flow = self.flow
        if key == "letter":
            signed = (
                flow.patient is not None
                and flow.statuses.get(flow.patient.id) == ConsultationStatus.SIGNED_OFF
            )
            if signed and self.signed.result is not None:
                self.show_page("signed")
            elif flow.document is not None or self.review.cards:
                self.show_page("review")
            elif flow.writing:
                self.show_page("processing")
            return
        if key in ("patient", "consultation") and flow.patient is None:
            return
        if key == "settings":
            flow.load_settings()
        if key == "diagnostics":
            flow.run_diagnostics()
        if key == "dashboard":
            flow.refresh_clinic()
        self.show_page(key)

    def _flow_changed(self) -> None:
        self._update_nav()
        self._update_demo_banner()

    def _update_nav(self) -> None:
        patient = self.flow.patient
        first = "Open a patient from today's clinic first"
        enable(self.nav["patient"], patient is not None, first)
        enable(self.nav["consultation"], patient is not None, first)
        enable(self.nav["letter"], self.flow.document is not None or self.flow.writing,
               first if patient is None else "No letter yet: write it from the Consultation screen")  # fmt: skip
        if patient:
            nhs = f"  ·  NHS {patient.nhs_number}" if patient.nhs_number else ""
            self.header_title.setText(f"{patient.name}{nhs}")
            self.header_title.setToolTip(self.header_title.text())
        else:
            self.header_title.setText("No patient open")

    def toggle_assistant(self) -> None:
        self.assistant_dock.setVisible(not self.assistant_dock.isVisible())

    def _update_demo_banner(self) -> None:
        doc, status = self.flow.document, self.flow.model_status
        demo_doc = bool(doc and doc.model and doc.model.demo)
        demo_engine = bool(status and status.kind == "demo")
        self.demo_banner.setVisible(demo_doc or demo_engine)

    # ------------------------------------------------------------------ recovery at start
    # ------------------------------------------------------------------ badges
    def set_model_status(self, status: ModelStatus | None, error: BaseException | None = None) -> None:
        if status is None:
            set_badge(self.model_badge, "Models: could not check", "bad")
            self.model_badge.setToolTip(user_message(error) if error else "")
        else:
            tone = {"medgemma": "ok", "demo": "demo", "missing": "bad"}[status.kind]
            set_badge(self.model_badge, status.label, tone, f"Model status: {status.label}")
            self.model_badge.setToolTip(
                "\n".join(f"{m.role}: {m.name} — {m.state} {m.device}" for m in status.models)
            )
        self._update_demo_banner()

    def set_environment(self, mics: MicStatus, asr: AsrStatus) -> None:
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

    # ------------------------------------------------------------------ patient

    # ------------------------------------------------------------------ shutdown
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Closing never loses work silently: a recording or a letter being written, or a draft not
        yet signed, is named and the clinician decides."""
        if self.flow.recording is not None:
            question = "A recording is in progress. Stop it (it is kept) and close Clarke?"
        else:
            pending = self.flow.work_in_progress()
            question = f"{pending}\n\nClose Clarke now?" if pending else ""
        if question:
            answer = QMessageBox.question(self, "Close Clarke", question)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        try:
            self.flow.shutdown()
        except Exception:
            log.exception("saving the work in progress at exit failed")  # class only: see logs.py
        self.poll.stop()
        event.accept()
