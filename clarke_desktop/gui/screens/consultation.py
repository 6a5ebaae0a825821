"""Consultation: record (or import audio, or paste a transcript), with a private aside box."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.gui.screens.patient import patient_strip
from clarke_desktop.gui.widgets import (
    badge,
    button,
    card,
    clear_layout,
    enable,
    label,
    notice,
    scroll_page,
    set_badge,
    vbox,
)
from clarke_desktop.schemas import PatientContext
from clarke_desktop.session.views import DOC_TYPE_LABELS, AsrStatus, MicStatus


def fmt_elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class ConsultationScreen(QWidget):
    record = Signal()
    pause = Signal()
    stop = Signal()
    import_audio = Signal()
    use_demo_transcript = Signal()
    open_transcript = Signal()
    generate = Signal()
    back = Signal()
    inputs_edited = Signal()  # the transcript or the aside changed (autosaved after a pause)

    def __init__(self) -> None:
        super().__init__()
        self.state = "idle"  # idle | recording | paused | stopped
        outer = vbox(self, (28, 16, 28, 12), 12)
        self._strip_holder = QVBoxLayout()
        outer.addLayout(self._strip_holder)

        grid = QGridLayout()
        grid.setSpacing(12)
        # --- recording card
        rec = card(padding=16)
        rl = rec.layout()
        rl.setSpacing(10)
        rl.addWidget(label("Recording", "h3"))
        self.state_badge = badge("Not recording", "neutral", "Recording state: not recording")
        self.timer = label("00:00")
        self.timer.setStyleSheet("font-size: 26pt; font-weight: 700; color: #1E3A5F;")
        self.timer.setAccessibleName("Elapsed recording time")
        rl.addLayout(_row(self.timer, self.state_badge))
        self.record_button = button(
            "●  Record", "record", accessible="Record", tip="Start or resume recording (Ctrl+R)"
        )
        self.pause_button = button("❚❚  Pause", accessible="Pause recording", tip="Pause (Ctrl+P)")
        self.stop_button = button(
            "■  Stop", accessible="Stop recording", tip="Stop and keep the recording (Ctrl+E)"
        )
        self.record_button.clicked.connect(self.record)
        self.pause_button.clicked.connect(self.pause)
        self.stop_button.clicked.connect(self.stop)
        rl.addLayout(_row(self.record_button, self.pause_button, self.stop_button))
        self.level = QProgressBar()
        self.level.setObjectName("levelMeter")
        self.level.setRange(0, 100)
        self.level.setValue(0)
        self.level.setFixedHeight(10)
        self.level.setAccessibleName("Microphone input level")
        rl.addWidget(label("Input level", "caption"))
        rl.addWidget(self.level)
        self.mic_picker = QComboBox()
        self.mic_picker.setAccessibleName("Microphone")
        rl.addWidget(label("Microphone", "caption"))
        rl.addWidget(self.mic_picker)
        self._notices = QVBoxLayout()
        rl.addLayout(self._notices)
        rl.addWidget(label("Or, without a microphone:", "caption"))
        self.import_button = button("Import audio file…", accessible="Import audio file")
        self.demo_button = button("Use demo consultation", accessible="Use the demo consultation transcript")
        self.text_button = button("Open transcript file…", accessible="Open a transcript text file")
        self.text_button.clicked.connect(self.open_transcript)
        self.import_button.clicked.connect(self.import_audio)
        self.demo_button.clicked.connect(self.use_demo_transcript)
        rl.addLayout(_row(self.import_button, self.text_button))
        rl.addLayout(_row(self.demo_button))
        rl.addStretch(1)
        rec_scroll = scroll_page(rec)
        rec_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        grid.addWidget(rec_scroll, 0, 0, 2, 1)

        # --- transcript card
        tr = card(padding=16)
        tl = tr.layout()
        self.transcript_title = label("Transcript", "h3")
        tl.addWidget(self.transcript_title)
        self.transcript = QPlainTextEdit()
        self.transcript.setPlaceholderText(
            "The live transcript appears here while you record.\nYou can also paste or type a transcript."
        )
        self.transcript.setAccessibleName("Consultation transcript")
        tl.addWidget(self.transcript, 1)
        self.transcript_info = label("", "caption")
        tl.addWidget(self.transcript_info)
        grid.addWidget(tr, 0, 1)

        # --- aside card
        aside = card(padding=16)
        al = aside.layout()
        al.addWidget(label("Clinician aside", "h3"))
        al.addWidget(
            label(
                "Goes into the letter, never into the transcript (examination findings, plans).",
                "caption",
                wrap=True,
            )
        )
        self.aside = QPlainTextEdit()
        self.aside.setPlaceholderText("e.g. BP 142/88, feet: monofilament intact, plan review 3 months")
        self.aside.setAccessibleName("Clinician aside notes")
        self.aside.setMaximumHeight(110)
        al.addWidget(self.aside)
        grid.addWidget(aside, 1, 1)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 3)
        grid.setRowStretch(0, 3)
        outer.addLayout(grid, 1)

        foot = QHBoxLayout()
        self.back_button = button("← Patient record", accessible="Back to patient record")
        self.back_button.clicked.connect(self.back)
        self.doc_type = QComboBox()
        for key, text in DOC_TYPE_LABELS.items():
            self.doc_type.addItem(text, key)
        self.doc_type.setAccessibleName("Document type")
        self.generate_button = button("Write letter  (Ctrl+Enter)", "primary", accessible="Write letter")
        self.generate_button.clicked.connect(self.generate)
        foot.addWidget(self.back_button)
        foot.addStretch(1)
        foot.addWidget(label("Document:", "caption"))
        foot.addWidget(self.doc_type)
        foot.addWidget(self.generate_button)
        outer.addLayout(foot)
        self.transcript.textChanged.connect(self._update_buttons)
        self.transcript.textChanged.connect(self._typed)
        self.aside.textChanged.connect(self._typed)
        self.set_state("idle")

    # --- state --------------------------------------------------------------------------------
    def reset(self, ctx: PatientContext | None, name: str, *, transcript: str = "", aside: str = "") -> None:
        """A patient opened: their strip, and what was typed for them before (autosaved) if any."""
        clear_layout(self._strip_holder)
        self._strip_holder.addWidget(patient_strip(ctx, name))
        self._restoring = True  # restored text is not a new edit
        self.transcript.setPlainText(transcript)
        self.aside.setPlainText(aside)
        self._restoring = False
        self.transcript_info.setText("")
        self.timer.setText("00:00")
        self.level.setValue(0)
        self.set_state("idle")

    def set_environment(self, mics: MicStatus, asr: AsrStatus) -> None:
        current = self.mic_picker.currentData()
        self.mic_picker.clear()
        for d in mics.devices:
            self.mic_picker.addItem(d.label + ("  (default)" if d.is_default else ""), d)
        if current is not None:
            for i in range(self.mic_picker.count()):
                if self.mic_picker.itemData(i).label == current.label:
                    self.mic_picker.setCurrentIndex(i)
        clear_layout(self._notices)
        if not mics.available:
            self.mic_picker.addItem("No microphone found")
            self._notices.addWidget(
                notice(
                    "Import audio, open a transcript file, or type below.", "info", "No microphone connected"
                )
            )
        if not asr.installed:
            self._notices.addWidget(
                notice(
                    "Type or open a transcript; IT can install MedASR.",
                    "warn",
                    "Transcription model not installed",
                )
            )
        self._mics_ok = mics.available and asr.installed
        self._asr_ok = asr.installed
        self.set_state(self.state)

    def set_state(self, state: str) -> None:
        self.state = state
        can_record = getattr(self, "_mics_ok", False)
        look = {
            "idle": ("Not recording", "neutral"),
            "recording": ("● Recording", "rec"),
            "paused": ("Paused", "warn"),
            "stopped": ("Recording stopped", "info"),
            "transcribing": ("Transcribing…", "info"),
        }[state]
        set_badge(self.state_badge, *look, accessible=f"Recording state: {look[0]}")
        self.record_button.setText("●  Resume" if state == "paused" else "●  Record")
        colour = {"recording": "#B8892A", "paused": "#9A5000"}.get(state, "#1E3A5F")
        self.timer.setStyleSheet(f"font-size: 26pt; font-weight: 700; color: {colour};")
        recording = state in ("recording", "paused")
        busy = recording or state == "transcribing"
        no_mic = (
            "Speech recognition is not installed: type or open a transcript instead"
            if not getattr(self, "_asr_ok", False)
            else "No microphone connected: import audio, open a transcript file, or type"
        )
        enable(self.record_button, can_record and state in ("idle", "paused"),
               no_mic if not can_record else "Already recording" if state == "recording" else "Transcribing: wait for it to finish",
               "Record the consultation (after the patient's consent)")  # fmt: skip
        enable(self.pause_button, state == "recording", "Not recording", "Pause the recording")
        enable(self.stop_button, recording, "Not recording", "Stop the recording and finish the transcript")
        self.transcript.setReadOnly(busy)
        stop_first = "Stop the recording first" if recording else "Transcribing: wait for it to finish"
        enable(self.import_button, not busy and getattr(self, "_asr_ok", False),
               stop_first if busy else "Speech recognition is not installed: open or type a transcript instead",
               "Transcribe an audio file of the consultation")  # fmt: skip
        enable(self.demo_button, not busy, stop_first, "Use the demo consultation's transcript")
        enable(self.text_button, not busy, stop_first, "Open a transcript file")
        enable(self.mic_picker, state == "idle", "Change the microphone when not recording", "Microphone")
        self.transcript_title.setText("Live transcript" if busy else "Transcript")
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_text = bool(self.transcript.toPlainText().strip())
        busy = self.state in ("recording", "paused", "transcribing")
        enable(self.generate_button, has_text and not busy,
               "Stop the recording first" if busy else "Record, import audio or paste a transcript first",
               "Write the letter from this transcript and the record")  # fmt: skip

    # --- intents for the controller (it never reaches into the widgets) ----------------------
    def transcript_text(self) -> str:
        return self.transcript.toPlainText().strip()

    def set_transcript_text(self, text: str, info: str | None = None) -> None:
        self.transcript.setPlainText(text)
        if info is not None:
            self.transcript_info.setText(info)

    def set_transcript_info(self, info: str) -> None:
        self.transcript_info.setText(info)

    def aside_text(self) -> str:
        return self.aside.toPlainText().strip()

    def chosen_doc_type(self) -> str:
        return str(self.doc_type.currentData())

    def choose_doc_type(self, doc_type: str) -> None:
        self.doc_type.setCurrentIndex(max(self.doc_type.findData(doc_type), 0))

    def can_record(self) -> bool:
        return self.record_button.isEnabled()

    def can_generate(self) -> bool:
        return self.generate_button.isEnabled()

    def recording_requested(self) -> None:
        """Consent given: the button waits while the microphone opens."""
        enable(self.record_button, False, "Opening the microphone…")

    def recording_started(self) -> None:
        self.set_state("recording")
        self.transcript.clear()

    def show_recording(self, elapsed_s: float, level: float, live_text: str) -> None:
        """The clock, the level meter and the live transcript, while recording or paused."""
        self.timer.setText(fmt_elapsed(elapsed_s))
        self.level.setValue(int(level * 100))
        if live_text and live_text != self.transcript.toPlainText():
            self.transcript.setPlainText(live_text)

    def _typed(self) -> None:
        if not getattr(self, "_restoring", False):
            self.inputs_edited.emit()

    def selected_mic(self) -> object | None:
        return self.mic_picker.currentData()


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setSpacing(8)
    for w in widgets:
        row.addWidget(w, 0, Qt.AlignmentFlag.AlignVCenter)
    row.addStretch(1)
    return row
