"""The consultation's flow in the GUI: which patient is open, the recording, the transcript, the
draft and its sign-off, the chart assistant, settings and diagnostics, each call to the session
service made through the TaskRunner so the window never blocks.

The window (main_window.py) lays out the screens, navigates and shows the badges; it listens to
this controller's signals. The controller drives the screens only through their intent methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget

from clarke_desktop.cancel import Cancelled
from clarke_desktop.errors import ClarkeError
from clarke_desktop.gui.screens.assistant import AssistantPanel
from clarke_desktop.gui.screens.consultation import ConsultationScreen, fmt_elapsed
from clarke_desktop.gui.screens.dashboard import DashboardScreen
from clarke_desktop.gui.screens.patient import PatientScreen
from clarke_desktop.gui.screens.processing import ProcessingScreen
from clarke_desktop.gui.screens.review import ReviewScreen
from clarke_desktop.gui.screens.settings import DiagnosticsScreen, SettingsScreen
from clarke_desktop.gui.screens.signed import SignedOffScreen, render_pdf_pages
from clarke_desktop.gui.screens.signoff import SignOffDialog
from clarke_desktop.gui.tasks import TaskRunner, TaskState
from clarke_desktop.identity import SignInError
from clarke_desktop.pipeline import FinaliseResult, SignOffPreview
from clarke_desktop.schemas import (
    ClinicalDocument,
    ClinicPatient,
    ConsultationStatus,
    PatientContext,
    Resolution,
    Transcript,
)
from clarke_desktop.session.events import (
    ContextReady,
    SectionDelta,
    SessionEvent,
    StageProgress,
    TranscriptReady,
)
from clarke_desktop.session.recording import RecordingSession
from clarke_desktop.session.service import ConsultationService
from clarke_desktop.session.transcripts import read_transcript_file
from clarke_desktop.session.views import AppSettings, AsrStatus, Draft, MicStatus, ModelStatus, Unfinished


def progress_slot(ev: SessionEvent) -> Any:
    """What a progress report updates: streamed text of one section, or the stage display."""
    match ev:
        case SectionDelta():
            return ("section", ev.key, ev.done)  # a section's final text is never replaced by a partial
        case StageProgress():
            return ("stage", ev.stage)
        case _:
            return ("other", id(ev))


def user_message(exc: BaseException) -> str:
    """A clinician-safe message: Clarke's own errors carry one; a missing or unreadable file says
    which; anything else is a defect and gets a generic sentence (details in the log)."""
    if isinstance(exc, ClarkeError):
        return exc.user_text
    text = str(exc).strip()
    if isinstance(exc, (FileNotFoundError, PermissionError, ValueError)) and text:
        return text
    return f"Something went wrong ({type(exc).__name__}). Details are in the log."


def _elsewhere(u: Unfinished) -> ClinicPatient:
    """A patient with an unfinished draft who is not in today's clinic: enough to open them."""
    return ClinicPatient(
        id=u.patient_id, nhs_number="", name=u.patient_name, date_of_birth="", age=0, sex="",
        appointment_time="", summary=f"Unfinished draft, last changed {u.updated_at[:10]}",
    )  # fmt: skip


@dataclass(frozen=True)
class Screens:
    dashboard: DashboardScreen
    patient: PatientScreen
    consultation: ConsultationScreen
    processing: ProcessingScreen
    review: ReviewScreen
    signed: SignedOffScreen
    settings: SettingsScreen
    diagnostics: DiagnosticsScreen
    assistant: AssistantPanel


class ConsultationController(QObject):
    page_wanted = Signal(str)  # a page the flow moves to
    flow_changed = Signal()  # patient, draft or running letter changed: navigation, header, banner
    unlocked = Signal(object)  # the account now using the window
    unlock_failed = Signal(str)
    models_checked = Signal(object, object)  # ModelStatus | None, the error when the check failed
    environment_checked = Signal(object, object)  # MicStatus, AsrStatus
    clinician_loaded = Signal(str)  # the sidebar's "name\nspecialty"

    def __init__(
        self,
        backend: ConsultationService,
        runner: TaskRunner,
        screens: Screens,
        window: QWidget,
        current_page: Any,
    ) -> None:
        super().__init__(window)
        self.backend = backend
        self.runner = runner
        self._window = window  # the parent of the dialogs
        self._current_page = current_page
        s = screens
        self.dashboard, self.patient_screen, self.consultation = s.dashboard, s.patient, s.consultation
        self.processing, self.review, self.signed = s.processing, s.review, s.signed
        self.settings_screen, self.diagnostics, self.assistant = s.settings, s.diagnostics, s.assistant
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
        self._pipeline: Any = None  # the running letter's task handle
        self._pipeline_started = 0.0
        self._highlight: str | None = None  # the next patient, after a sign-off
        self._consented: set[str] = set()  # consultations whose recording consent was confirmed
        self._elsewhere: dict[str, ClinicPatient] = {}  # unfinished drafts of patients not in today's clinic
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(800)
        self._autosave.timeout.connect(self.save_inputs)

    @property
    def writing(self) -> bool:
        """A letter is being written."""
        return self._pipeline is not None

    def _models_checked(self, status: ModelStatus | None, error: BaseException | None = None) -> None:
        self.model_status = status
        if status is not None:
            self.settings_screen.set_models(status)
        self.models_checked.emit(status, error)

    def _environment_checked(self, mics: MicStatus, asr: AsrStatus) -> None:
        self.mics, self.asr = mics, asr
        self.consultation.set_environment(mics, asr)
        self.environment_checked.emit(mics, asr)

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
                self._window, "Recover interrupted work",
                f"Clarke was interrupted last time. Found: {what}.\n\nRecover it now? Drafts go back to review "
                "with every autosaved edit; recordings are converted and attached to their consultation.",
            )  # fmt: skip
            if answer == QMessageBox.StandardButton.Yes:
                self.runner.submit(
                    lambda _s: self.backend.interrupted_work(recover=True),
                    on_result=lambda _r: self.refresh_clinic(),
                    on_error=lambda e: QMessageBox.warning(self._window, "Recovery", user_message(e)),
                    key="recover",
                )

        self.runner.submit(lambda _s: self.backend.interrupted_work(), on_result=found, key="recover")

    # ------------------------------------------------------------------ status refresh
    def refresh_all(self) -> None:
        self.refresh_clinic()
        self.runner.submit(
            lambda s: self.backend.model_status(),
            on_result=self._models_checked,
            on_error=lambda e: self._models_checked(None, e),
            key="models",
        )
        self.runner.submit(
            lambda s: (self.backend.microphones(), self.backend.asr_status()),
            on_result=lambda r: self._environment_checked(*r),
            key="env",
        )
        # The model packs' full check (seconds to minutes of hashing for 27B) while the clinician
        # opens the clinic, not after "End consultation"; on the models' lane, so a letter asked
        # for meanwhile waits for the rest of it instead of hashing the same files again.
        self.runner.submit(
            lambda s: self.backend.verify_models(), on_error=lambda e: None, lane="llm", key="verify-models"
        )

    def refresh_clinic(self) -> None:
        def work(_s: TaskState) -> Any:
            clinician, patients = self.backend.clinic()
            return clinician, patients, self.backend.statuses(), self.backend.unfinished()

        def done(r: Any) -> None:
            clinician, patients, statuses, unfinished = r
            self.patients = {p.id: p for p in patients}
            self.statuses = statuses
            self._elsewhere = {
                u.patient_id: _elsewhere(u) for u in unfinished if u.patient_id not in self.patients
            }
            # Who is signed in (their name goes on letters), else the clinic's booked clinician.
            who = self.backend.account.display_name if self.accounts_in_use else clinician.name
            self.clinician_loaded.emit(f"{who}\n{clinician.specialty}".strip())
            self.dashboard.set_clinic(
                clinician, patients, statuses, self.patient.id if self.patient else self._highlight
            )
            self.dashboard.set_unfinished(unfinished)

        self.runner.submit(
            work, on_result=done, on_error=lambda e: self.dashboard.show_error(user_message(e)), key="clinic"
        )

    def open_patient(self, patient_id: str) -> None:
        if self._pipeline is not None and self.patient is not None and self.patient.id != patient_id:
            answer = QMessageBox.question(
                self._window,
                "Letter being written",
                f"A letter for {self.patient.name} is still being written. Stop it and open another patient?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.cancel_pipeline()
            self._pipeline = None
        if self.recording is not None:
            QMessageBox.information(
                self._window, "Recording", "Stop the current recording before opening another patient."
            )
            return
        patient = self.patients.get(patient_id) or self._elsewhere.get(patient_id)
        if patient is None:
            return
        if self.patient is None or self.patient.id != patient_id:
            self._reset_flow()
        self.patient = patient
        self.assistant.set_patient(patient.name)
        self.flow_changed.emit()
        self.page_wanted.emit("patient")
        if self.context is not None and self.context.patient_id == patient_id:
            return
        self.patient_screen.show_loading(patient.name)

        def work(s: TaskState) -> Any:
            cid = self.backend.start_consultation(patient_id)
            ctx = self.backend.patient_context(patient_id, s.cancel)
            return cid, ctx, self.backend.resume(cid)

        def done(r: Any) -> None:
            self.consultation_id, self.context, draft = r
            self.patient_screen.set_context(self.context)
            self._restore(draft, patient.name)

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

    def _restore(self, draft: Draft, name: str) -> None:
        """Put back what was saved for this consultation: typed inputs, and an unsigned letter
        with every edit and resolution (so the Letter page opens on it)."""
        t = draft.transcript
        self.transcript = t
        self.consultation.reset(self.context, name, transcript=t.text if t else "", aside=draft.aside)
        if draft.letter is not None and not draft.signed:
            self.document = draft.letter
            self.review.start(
                self.context, name, t or Transcript(text="", origin="typed"), draft.letter.doc_type
            )
            self.review.set_aside(draft.aside)
            self.review.set_document(draft.letter)
        self.flow_changed.emit()

    # --- autosave of what is typed -------------------------------------------------------------
    def inputs_edited(self) -> None:
        self._autosave.start()  # restarts: saved once typing pauses

    def save_inputs(self) -> None:
        """Save the transcript and aside now (after a pause in typing, before a letter, at close)."""
        self._autosave.stop()
        cid = self.consultation_id
        if cid is None:
            return
        text, aside = self.consultation.transcript_text(), self.consultation.aside_text()
        known = self.transcript if self.transcript and self.transcript.text.strip() == text else None
        self.runner.submit(
            lambda _s: self.backend.save_inputs(cid, known or text, aside),
            lane="db",
            on_error=lambda e: self.consultation.set_transcript_info(f"Not saved: {user_message(e)}"),
        )

    def work_in_progress(self) -> str | None:
        """What closing the window would interrupt, in a sentence; None when nothing would be."""
        if self.patient is None:
            return None
        name = self.patient.name
        if self._pipeline is not None:
            return f"A letter for {name} is being written; closing stops it (the transcript is kept)."
        if self.statuses.get(self.patient.id) == ConsultationStatus.SIGNED_OFF:
            return None  # signed and sent: nothing is left to lose
        if self.document is not None:
            return f"The letter for {name} is not signed yet. It is saved and will be here when you reopen Clarke."
        if self.consultation.transcript_text() or self.consultation.aside_text():
            return f"The consultation for {name} has no letter yet. What you typed is saved."
        return None

    def _reset_flow(self) -> None:
        self.context = None
        self.consultation_id = None
        self.transcript = None
        self.document = None
        self.signed.result = None
        self.flow_changed.emit()

    def begin_consultation(self) -> None:
        if self.patient is None:
            return
        if not self.consultation.transcript_text() and self.context is None:
            self.consultation.reset(None, self.patient.name)
        self.page_wanted.emit("consultation")

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
                self._window,
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
            self.consultation.recording_started()

        def failed(e: BaseException) -> None:
            self.consultation.set_state("idle")
            QMessageBox.warning(self._window, "Microphone", user_message(e))

        self.consultation.recording_requested()
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
            QMessageBox.warning(self._window, "Recording", user_message(e))

        self.runner.submit(work, on_result=done, on_error=failed, lane="audio")

    def tick(self) -> None:
        """Ten times a second: the recording's clock, level and live text; the letter's elapsed time."""
        if self.recording is not None and self.consultation.state in ("recording", "paused"):
            self.consultation.show_recording(
                self.recording.elapsed_s, self.recording.level, self.recording.live_text
            )
        if self._pipeline is not None and self._current_page() == "processing":
            self.processing.set_elapsed(time.monotonic() - self._pipeline_started)

    def set_transcript(self, t: Transcript) -> None:
        self.transcript = t
        self.consultation.set_transcript_text(t.text)
        info = f"{t.word_count} words"
        if t.duration_s:
            info += f" · {fmt_elapsed(t.duration_s)} of audio"
        if t.provider:
            info += f" · {t.model or 'ASR'} on {t.provider}"
        self.consultation.set_transcript_info(info)
        self.consultation.set_state("stopped" if t.origin == "asr" else "idle")

    def import_audio(self) -> None:
        if self.consultation_id is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self._window,
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
        self.consultation.set_transcript_info(f"Transcribing {path.name}…")

        def work(s: TaskState) -> Transcript:
            return self.backend.transcript_from_audio(
                cid, path, lambda pct, msg: s.progress((pct, msg), throttle_s=0.1), s.cancel
            )

        def failed(e: BaseException) -> None:
            self.consultation.set_state("idle")
            self.consultation.set_transcript_info("")
            QMessageBox.warning(self._window, "Import audio", user_message(e))

        self.runner.submit(
            work,
            on_result=self.set_transcript,
            on_error=failed,
            lane="audio",
            on_progress=lambda p: self.consultation.set_transcript_info(f"{p[1]} ({p[0]}%)"),
        )

    def open_transcript(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Open a transcript", str(Path.home()), "Text (*.txt);;All files (*)"
        )
        if path:
            self.load_transcript_file(Path(path))

    def load_transcript_file(self, path: Path) -> None:
        def done(t: Transcript) -> None:
            self.transcript = t  # imported: its origin and timings go with the letter
            self.consultation.set_transcript_text(t.text, f"Transcript from {path.name}")

        self.runner.submit(
            lambda _s: read_transcript_file(path),
            on_result=done,
            on_error=lambda e: QMessageBox.warning(self._window, "Open transcript", user_message(e)),
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
            self.consultation.set_transcript_text(text)
            self.consultation.set_transcript_info("Demo consultation transcript (typed, not recorded)")

        self.runner.submit(
            work,
            on_result=done,
            on_error=lambda e: QMessageBox.information(self._window, "Demo consultation", user_message(e)),
        )

    # ------------------------------------------------------------------ letter
    def generate(self, doc_type: str | None = None) -> None:
        if self.consultation_id is None or self.patient is None:
            return
        text = self.consultation.transcript_text()
        if not text:
            return
        doc_type = doc_type or self.consultation.chosen_doc_type()
        aside = self.consultation.aside_text()
        self.save_inputs()  # what the letter is written from is on disk before the model starts
        self.review.set_aside(aside)
        cid, name, doc_patient = self.consultation_id, self.patient.name, self.patient.id
        known = self.transcript if (self.transcript and self.transcript.text.strip() == text) else None
        transcript = known or Transcript(text=text, origin="typed")
        self.document = None
        self.processing.reset()
        self.review.start(self.context, name, transcript, doc_type)
        self.statuses[doc_patient] = ConsultationStatus.PROCESSING
        self._pipeline_started = time.monotonic()
        self.page_wanted.emit("processing")
        self.flow_changed.emit()

        def work(s: TaskState) -> ClinicalDocument:
            result = self.backend.draft(
                cid, transcript=transcript, aside=aside, doc_type=doc_type,  # type: ignore[arg-type]
                on_event=s.progress, cancel=s.cancel,
            )  # fmt: skip
            return result.document

        def current() -> bool:  # the clinician may have moved on to another patient
            return self.consultation_id == cid

        def progress(ev: SessionEvent) -> None:
            if current():
                self._on_draft_event(ev)

        def done(doc: ClinicalDocument) -> None:
            self._pipeline = None
            if not current():
                return
            self.document = doc
            self.review.set_document(doc)
            self.statuses[doc_patient] = ConsultationStatus.REVIEW
            self.flow_changed.emit()
            self.page_wanted.emit("review")

        def failed(e: BaseException) -> None:
            self._pipeline = None
            if not current():
                return
            cancelled = isinstance(e, Cancelled)
            self.processing.fail(user_message(e), cancelled=cancelled)
            self.review.generation_failed("Cancelled." if cancelled else user_message(e))
            self.page_wanted.emit("processing")
            self.flow_changed.emit()

        self._pipeline = self.runner.submit(
            work,
            on_result=done,
            on_error=failed,
            on_progress=progress,
            lane="llm",
            key="pipeline",
            coalesce=progress_slot,
        )
        self.flow_changed.emit()

    def _on_draft_event(self, ev: SessionEvent) -> None:
        match ev:
            case TranscriptReady(transcript=t):
                self.transcript = t
                self.review.set_transcript(t.text)
            case ContextReady(context=ctx):
                if ctx.demographics.name:  # not the empty transcript-only context
                    self.context = ctx
                    self.patient_screen.set_context(ctx)
            case SectionDelta():
                self.review.on_section_event(ev)
                if self._current_page() == "processing":
                    self.page_wanted.emit("review")  # watch the letter stream in
            case _:
                self.processing.on_progress(ev)

    def cancel_pipeline(self) -> None:
        if self._pipeline is not None:
            self._pipeline.cancel()
            self.processing.cancelling()

    def change_doc_type(self, doc_type: str) -> None:
        if self.document is not None and doc_type == self.document.doc_type:
            return
        answer = QMessageBox.question(
            self._window,
            "Change document type",
            "Write a new draft as this document type? Your edits to the current draft are kept in its history.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.consultation.choose_doc_type(doc_type)
            self.generate(doc_type)
        elif self.document is not None:
            self.review.show_doc_type(self.document.doc_type)

    def discard_draft(self) -> None:
        answer = QMessageBox.question(
            self._window, "Discard draft", "Discard this draft and go back to the consultation?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.document = None
            self.flow_changed.emit()
            self.flow_changed.emit()
            self.page_wanted.emit("consultation")

    def save_section(self, key: str, content: str) -> None:
        cid = self.consultation_id
        if cid is None:
            return
        if self.document is not None:
            for s in self.document.sections:
                if s.key == key:
                    s.content = content

        def saved(doc: ClinicalDocument | None) -> None:
            if doc is not None and self.consultation_id == cid:
                self.review.update_checks(doc, key)

        self.runner.submit(
            lambda _s: self.backend.save_section(cid, key, content),
            lane="db",
            on_result=saved,
            on_error=lambda e: self.review.set_note(f"Edit not saved: {user_message(e)}"),
        )

    def regenerate_section(self, key: str, instruction: str) -> None:
        if self.document is None or self.consultation_id is None:
            return
        self.review.flush_edits()
        doc = self.review.current_document()
        cid = self.consultation_id
        self.review.mark_regenerating(key)

        def progress(ev: SessionEvent) -> None:
            if isinstance(ev, SectionDelta) and ev.key == key and self.consultation_id == cid:
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
            lambda s: self.backend.regenerate_section(cid, doc, key, instruction, s.progress, s.cancel),
            on_result=done,
            on_error=failed,
            on_progress=progress,
            lane="llm",
            key=f"regen:{key}",
            coalesce=progress_slot,
        )

    def resolve_discrepancy(self, discrepancy_id: str, res: Resolution) -> None:
        """Resolve one item; an action that changes the letter changes it in the service (on the
        text as saved: pending typing is saved first, on the same lane), then shows it marked."""
        self._on_discrepancy(
            discrepancy_id, lambda cid: self.backend.resolve_discrepancy(cid, discrepancy_id, res)
        )

    def undo_resolution(self, discrepancy_id: str) -> None:
        self._on_discrepancy(discrepancy_id, lambda cid: self.backend.undo_resolution(cid, discrepancy_id))

    def _on_discrepancy(self, discrepancy_id: str, call: Callable[[str], ClinicalDocument]) -> None:
        cid = self.consultation_id
        if cid is None:
            return
        self.review.flush_edits()

        def done(doc: ClinicalDocument) -> None:
            if self.consultation_id == cid:
                self.document = doc
                self.review.apply_resolution(doc, discrepancy_id)

        self.runner.submit(
            lambda _s: call(cid),
            lane="db",
            on_result=done,
            on_error=lambda e: QMessageBox.warning(self._window, "Discrepancy", user_message(e)),
        )

    def sign_off(self) -> None:
        """Sign off deliberately: a preview of exactly what will be signed and sent, with the signer
        and where it goes, then the clinician confirms (or goes back to the letter)."""
        if self.consultation_id is None or self.patient is None:
            return
        if self.review.blockers():
            self.review.explain_blockers()
            return
        self.review.flush_edits()
        doc = self.review.current_document()
        if doc is None:
            return
        cid = self.consultation_id
        self.review.signing()
        self.review.set_note("Preparing the preview of the signed letter…")

        def work(_s: TaskState) -> tuple[SignOffPreview, list[Any], int]:
            self.runner.wait_lane("db")  # edits and resolutions are saved first
            preview = self.backend.preview_sign_off(cid, doc)
            try:
                pages, total = render_pdf_pages(preview.pdf_path)
            except Exception:  # the dialog says the preview could not be drawn and names the file
                pages, total = [], 0
            return preview, pages, total

        def shown(r: tuple[SignOffPreview, list[Any], int]) -> None:
            preview, pages, total = r
            try:
                decision = (
                    SignOffDialog.confirm(self._window, preview, pages, total, ask_password=self.accounts_in_use)
                    if self.consultation_id == cid
                    else None
                )
            finally:
                self.runner.submit(lambda _s: self.backend.discard_preview(preview), lane="db")
            if decision is not None:
                self._sign(cid, doc, decision)
            else:
                self.review.sign_failed()
                self.review.set_note("Not signed: the letter is as you left it.")

        def failed(e: BaseException) -> None:
            self.review.sign_failed()
            QMessageBox.warning(self._window, "Sign off", user_message(e))

        self.runner.submit(work, on_result=shown, on_error=failed, key="signoff")

    # ------------------------------------------------------------------ lock
    def lock(self, reason: str) -> None:
        """Cover everything; the clinician's typing is saved first. Audited."""
        if not self.accounts_in_use:
            return
        self.review.flush_edits()
        self.runner.submit(lambda _s: self.backend.lock(reason=reason), lane="db")

    def unlock(self, name: str, password: str) -> None:
        """The same account again (everything as it was), or another account signing in (the open
        patient is closed, the clinic list shown: their session, their name on what they sign)."""
        before = self.backend.account

        def done(account: Any) -> None:
            if before is not None and account.name != before.name:
                self.patient = None
                self._reset_flow()
                self.assistant.set_patient(None)
                self.flow_changed.emit()
                self.refresh_clinic()
                self.page_wanted.emit("dashboard")
            self.unlocked.emit(account)

        self.runner.submit(
            lambda _s: self.backend.unlock(name, password),
            on_result=done,
            on_error=lambda e: self.unlock_failed.emit(user_message(e)),
            key="unlock",
        )

    @property
    def accounts_in_use(self) -> bool:
        """Whether someone signed in (then sign-off and approvals ask for their password again)."""
        return getattr(self.backend, "account", None) is not None

    def _sign(self, cid: str, doc: ClinicalDocument, password: str) -> None:
        patient = self.patient
        assert patient is not None
        self.review.signing()

        def work(_s: TaskState) -> FinaliseResult:
            self.runner.wait_lane("db")
            if self.accounts_in_use:  # nothing is signed until the password is right
                self.backend.reauthenticate(password, purpose="sign-off")
            return self.backend.sign_off(cid, doc)

        def done(result: FinaliseResult) -> None:
            self.statuses[patient.id] = ConsultationStatus.SIGNED_OFF
            self.signed.set_result(result, patient.name, save_copy=lambda: self.save_pdf_copy(result))
            self.page_wanted.emit("signed")
            self.runner.submit(
                lambda _s: render_pdf_pages(result.pdf_path),
                key="pdf-preview",
                on_result=lambda r: self.signed.set_pages(*r),
                on_error=lambda e: self.signed.preview_failed(user_message(e)),
            )

        def failed(e: BaseException) -> None:
            self.review.sign_failed()
            QMessageBox.warning(self._window, "Sign off", user_message(e))

        self.runner.submit(work, on_result=done, on_error=failed, key="signoff")

    def save_pdf_copy(self, result: FinaliseResult) -> None:
        """A readable copy of the signed PDF where the clinician chooses (the kept one stays
        encrypted); written off the GUI thread and audited with its destination."""
        path, _ = QFileDialog.getSaveFileName(
            self._window, "Save a readable copy of the signed letter", str(Path.home() / result.pdf_path.name),
            "PDF (*.pdf)",
        )  # fmt: skip
        if not path:
            return
        target = Path(path) if path.lower().endswith(".pdf") else Path(path + ".pdf")
        self.runner.submit(
            lambda _s: self.backend.save_pdf_copy(result.consultation_id, result.version, target),
            lane="db",
            on_result=self.signed.copy_saved,
            on_error=lambda e: QMessageBox.warning(self._window, "Save a copy", user_message(e)),
            key="pdf-copy",
        )

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
        self.flow_changed.emit()
        self.refresh_clinic()
        self.page_wanted.emit("dashboard")
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
        """A write to the record happens only on approval, and an approval is the clinician's own:
        their password is asked again (declining asks nothing)."""
        if self.patient is None:
            return
        pid = self.patient.id
        password = ""
        if approve and self.accounts_in_use:
            password, ok = QInputDialog.getText(
                self._window, "Approve the change to the record",
                "Your password, to write this change to the record as yourself:", QLineEdit.EchoMode.Password,
            )  # fmt: skip
            if not ok:
                return

        def work(_s: TaskState) -> Any:
            if approve and self.accounts_in_use:
                self.backend.reauthenticate(password, purpose="approve record change")
            return self.backend.decide_proposal(pid, proposal_id, approve)

        def failed(e: BaseException) -> None:
            if isinstance(e, SignInError):  # the proposal stays open for another try
                self.assistant.decision_refused(proposal_id, user_message(e))
            else:
                self.assistant.set_failed(user_message(e))

        self.runner.submit(work, lane="db", on_result=self.assistant.proposal_decided, on_error=failed)

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

    def export_diagnostics(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self._window, "Save the diagnostics report in", str(Path.home())
        )
        if not folder:
            return
        self.runner.submit(
            lambda _s: self.backend.export_diagnostics(Path(folder)),
            on_result=lambda paths: QMessageBox.information(
                self._window, "Diagnostics", "Saved for IT:\n" + "\n".join(str(p) for p in paths)
            ),
            on_error=lambda e: QMessageBox.warning(self._window, "Diagnostics", user_message(e)),
            key="diagnostics-export",
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

    def shutdown(self) -> None:
        """Closing the window: stop a recording and a letter being written, save what was typed
        and any unsaved edit."""
        if self._pipeline is not None:
            self._pipeline.cancel()
        if self.recording is not None:
            try:
                self.recording.stop()
            finally:
                self.recording = None
        if self.consultation_id is not None and self._autosave.isActive():
            self._autosave.stop()
            text, aside = self.consultation.transcript_text(), self.consultation.aside_text()
            self.backend.save_inputs(self.consultation_id, text, aside)  # at exit: no worker to wait for
        self.review.flush_edits()
