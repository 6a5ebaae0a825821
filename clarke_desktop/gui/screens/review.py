"""Review: the letter streams in section by section; edit, regenerate, resolve, check facts, sign.

Sign-off stays disabled until every discrepancy is resolved (use the record's value, use what was
said, keep both, or dismiss with a reason) and nothing is still being written; the button's tooltip
says what is missing. A resolution that changes the letter shows the change marked, and can be
undone until sign-off; F8 walks the open items.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.gui.screens.patient import patient_strip
from clarke_desktop.gui.widgets import (
    badge,
    button,
    clear_layout,
    enable,
    label,
    repolish,
    scroll_page,
    set_badge,
    vbox,
)
from clarke_desktop.letters.amend import Place, agreed_wording, locate
from clarke_desktop.letters.discrepancies import is_red
from clarke_desktop.schemas import (
    ClinicalDocument,
    Discrepancy,
    DocumentSection,
    FactCheckItem,
    PatientContext,
    Resolution,
    Transcript,
)
from clarke_desktop.session.events import SectionDelta
from clarke_desktop.session.views import DOC_TYPE_LABELS

AUTOSAVE_MS = 700


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "time unknown"
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"


KIND_LABELS = {
    "dose": "Dose", "frequency": "Frequency", "allergy": "Allergy", "allergy_class": "Allergy class conflict",
    "lab_value": "Result", "unrecorded_medicine": "Medicine not on the record", "stopped_medicine": "Medicine stopped",
    "diagnosis": "Diagnosis not on the problem list", "other": "Check",
}  # fmt: skip


def evidence_text(fact: FactCheckItem) -> str:
    """What the clinician sees after clicking a fact: where it came from, in words."""
    if fact.supported:
        verdict = "supported"
    elif fact.evidence:  # named in the consultation or the record, but not with what it is written with
        verdict = "NOT SUPPORTED as written: found, but not with this dose or frequency"
    else:
        verdict = "NOT FOUND in transcript or record"
    lines = [f"“{fact.text}”  —  {verdict}"]
    for ev in fact.evidence:
        if ev.kind == "transcript" and ev.span is not None:
            lines.append(
                f"Transcript {fmt_time(ev.span.start_s)}–{fmt_time(ev.span.end_s)}: “{ev.span.text}”"
            )
        elif ev.source is not None:
            ver = f" (version {ev.source.version_id})" if ev.source.version_id else ""
            lines.append(f"Record {ev.source.reference}{ver}: {ev.text or ''}".rstrip(": "))
        elif ev.text:
            lines.append(ev.text)
    if not fact.evidence:
        lines.append("No evidence found. Check this value before signing.")
    return "\n".join(lines)


def writing_note(ev: SectionDelta) -> str:
    """“Writing “Plan” (section 2 of 3) · about 40 s left · 12 tokens/s”, or “Writing 3 sections
    together · …” when the model writes them at the same time: where the letter stands and an
    estimate from the rate measured on this letter (none until one is known)."""
    p = ev.progress
    if p is None:
        return f"Writing “{ev.heading}”…"
    if p.together > 1:
        parts = [f"Writing {p.together} sections together"]
    else:
        parts = [f"Writing “{ev.heading}” (section {p.index} of {p.count})"]
    if p.remaining_s is not None:
        left = round(p.remaining_s)
        parts.append(
            f"about {left // 60} min {left % 60:02d} s left" if left >= 60 else f"about {max(left, 1)} s left"
        )
    if p.tokens_per_second is not None:
        parts.append(f"{p.tokens_per_second:.0f} tokens/s")
    return " · ".join(parts)


class SectionCard(QFrame):
    edited = Signal(str, str)  # key, content (debounced)
    regenerate = Signal(str, str)  # key, instruction
    fact_at = Signal(object)  # FactCheckItem under the cursor

    def __init__(self, key: str, heading: str) -> None:
        super().__init__()
        self.key = key
        self.setProperty("card", True)
        self.facts: list[FactCheckItem] = []
        self.highlights: list[tuple[int, int]] = []  # text a resolution just wrote, marked until edited
        self._loading = False
        lay = vbox(self, (16, 12, 16, 12), 6)
        top = QHBoxLayout()
        self.heading = label(heading, "h3")
        self.tag = badge("", "neutral")
        self.tag.hide()
        top.addWidget(self.heading)
        top.addStretch(1)
        top.addWidget(self.tag)
        lay.addLayout(top)
        self.editor = QTextEdit()
        self.editor.setObjectName("sectionEditor")
        self.editor.setAcceptRichText(False)
        self.editor.setAccessibleName(f"{heading} section text")
        self.editor.setMinimumHeight(70)
        lay.addWidget(self.editor)
        regen = QHBoxLayout()
        self.instruction = QLineEdit()
        self.instruction.setPlaceholderText(
            "Instruction for a rewrite, e.g. “shorter”, “mention the foot check”"
        )
        self.instruction.setAccessibleName(f"Instruction to regenerate {heading}")
        self.regen_button = button("↻ Regenerate", accessible=f"Regenerate {heading}")
        self.regen_button.clicked.connect(
            lambda: self.regenerate.emit(self.key, self.instruction.text().strip())
        )
        self.instruction.returnPressed.connect(self.regen_button.click)
        regen.addWidget(self.instruction, 1)
        regen.addWidget(self.regen_button)
        lay.addLayout(regen)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self.flush)
        # Grow with the text, also after the width changes (wrapping), up to a limit.
        self.editor.document().documentLayout().documentSizeChanged.connect(lambda _size: self._fit())
        self.editor.textChanged.connect(self._changed)
        self.editor.cursorPositionChanged.connect(self._cursor_moved)
        self.dirty = False

    def _changed(self) -> None:
        if self._loading:
            return
        self.dirty = True
        if self.facts or self.highlights:  # offsets no longer match the edited text
            self.facts = []
            self.highlights = []
            self.editor.setExtraSelections([])
        self.mark_edited("you")
        self._timer.start()
        self._fit()

    def mark_edited(self, who: str) -> None:
        """Provenance: once the clinician has changed a section, its words are theirs, not the model's."""
        set_badge(self.tag, f"Edited by {who}", "ok", f"Text edited by {who}")
        self.tag.setToolTip(
            "Edited by the clinician: the fact check runs again on this text when it is saved"
        )
        self.tag.show()

    def flush(self) -> None:
        """Save now (debounce timer fired, or the clinician is signing / leaving)."""
        self._timer.stop()
        if self.dirty:
            self.dirty = False
            self.edited.emit(self.key, self.editor.toPlainText())

    def set_text(self, text: str) -> None:
        self._loading = True
        try:
            current = self.editor.toPlainText()
            if current and text.startswith(current) and self.editor.isReadOnly():
                cursor = QTextCursor(self.editor.document())  # streaming: append only the new text
                cursor.movePosition(QTextCursor.MoveOperation.End)
                cursor.insertText(text[len(current) :])
            elif text != current:
                self.editor.setPlainText(text)
        finally:
            self._loading = False
        self._fit()

    def text(self) -> str:
        return self.editor.toPlainText()

    @property
    def streaming(self) -> bool:
        """Whether the model is writing this section now."""
        return bool(getattr(self, "_streaming", False))

    def set_streaming(self, streaming: bool) -> None:
        if getattr(self, "_streaming", None) == streaming:
            return  # re-polishing costs milliseconds; streamed updates come by the hundred
        self._streaming = streaming
        self.editor.setReadOnly(streaming)
        self.editor.setProperty("streaming", streaming)
        repolish(self.editor)
        enable(self.regen_button, not streaming, "This section is being written",
               "Write this section again, following the instruction")  # fmt: skip
        self.instruction.setEnabled(not streaming)
        if streaming:
            set_badge(self.tag, "Writing…", "info")
            self.tag.show()
        elif self.tag.text() == "Writing…":
            set_badge(self.tag, "Written", "neutral")

    def set_model_tag(self, section: DocumentSection, demo: bool) -> None:
        self._section = section
        if section.edited_by and section.kind == "narrative":
            self.mark_edited(section.edited_by)
        elif section.kind == "facts":
            set_badge(self.tag, "From the record", "info", "Facts copied from the record")
            self.instruction.hide()  # rendered from the record: edit it, never rewritten by a model
            self.regen_button.hide()
        else:
            # Shown only while empty: the model wrote nothing usable (the warnings above say why).
            self.editor.setPlaceholderText("No text from the model: type this section, or regenerate it.")
            if demo:
                set_badge(
                    self.tag, "Demo model text", "demo", "Written by the demo model, not for clinical use"
                )
            else:
                set_badge(self.tag, f"Written by {section.generated_by or 'model'} — check", "neutral")
        self.tag.show()
        if not section.editable:
            self.editor.setReadOnly(True)
            enable(self.regen_button, False, "This section is copied from the record, not written by a model")

    def set_facts(self, facts: list[FactCheckItem]) -> None:
        self.facts = facts
        self._paint_facts(None)

    def highlight(self, ranges: list[tuple[int, int]]) -> None:
        """Mark text a resolution changed (or the place a discrepancy is about) and bring it into
        view, the cursor at its start."""
        text_len = len(self.text())
        self.highlights = [(a, b) for a, b in ranges if 0 <= a <= b <= text_len]
        self._paint_facts(None)
        if self.highlights:
            cur = QTextCursor(self.editor.document())
            cur.setPosition(self.highlights[0][0])
            self.editor.setTextCursor(cur)
            self.editor.ensureCursorVisible()

    def _paint_facts(self, current: FactCheckItem | None) -> None:
        """Mark every fact where it is (unsupported ones underlined in orange); the facts bound to
        the one under the cursor (a drug with its dose and frequency) are outlined together."""
        sels = []
        text_len = len(self.text())
        group = current.group if current is not None else None
        for f in self.facts:
            if not (0 <= f.char_start < f.char_end <= text_len):
                continue
            sel = QTextEdit.ExtraSelection()
            cur = QTextCursor(self.editor.document())
            cur.setPosition(f.char_start)
            cur.setPosition(f.char_end, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cur
            fmt = QTextCharFormat()
            together = f is current or (group is not None and f.group == group)
            if f.supported:
                fmt.setBackground(QColor("#C9D8F0" if together else "#E3EBF7"))
            else:
                fmt.setBackground(QColor("#F8C99A" if together else "#FCE3C8"))
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                fmt.setUnderlineColor(QColor("#E67E22"))
            if together:
                fmt.setFontWeight(700)
            fmt.setToolTip(evidence_text(f))
            sel.format = fmt
            sels.append(sel)
        for a, b in self.highlights:  # over the facts: the change is what the clinician looks for
            sel = QTextEdit.ExtraSelection()
            cur = QTextCursor(self.editor.document())
            cur.setPosition(a)
            cur.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cur
            fmt = QTextCharFormat()
            fmt.setBackground(QColor("#FFE58A"))
            fmt.setToolTip("Changed when the discrepancy was resolved")
            sel.format = fmt
            sels.append(sel)
        self.editor.setExtraSelections(sels)

    def _cursor_moved(self) -> None:
        pos = self.editor.textCursor().position()
        for f in self.facts:
            if f.char_start <= pos <= f.char_end:
                self._paint_facts(f)
                self.fact_at.emit(f)
                return

    def _fit(self) -> None:
        doc_h = self.editor.document().size().height()
        height = int(min(max(doc_h + 14, 70), 420))
        if height != self.editor.height():
            self.editor.setFixedHeight(height)


# A red conflict (an allergy, or any high-severity one) is dismissed only for a stated, specific
# reason chosen here; a free-text note may add to it but never replaces it.
SPECIFIC_REASONS = {
    "allergy": (
        "The record is right: what was said in the consultation was mistaken",
        "The record is wrong: I will correct the allergy record",
        "Both are true: a different drug or a different reaction",
        "Not a true allergy (an intolerance or side effect): the record will be updated",
    ),
    "other": (
        "The record is right: what was said was mistaken or misheard",
        "The record is out of date: I will update it",
        "What was said is right and the letter says so",
    ),
}


def outcome_text(d: Discrepancy, res: Resolution) -> str:
    """What a resolution did, in the checklist's words: which value the letter now gives and where."""
    where = sorted({e.section_key for e in res.edits})
    changed = f" (changed in the letter: {', '.join(where)})" if where else ""
    if res.action == "use_record":
        said = f" — the letter now says {d.record_value}" if res.edits else ""
        return f"✓ The record is right{said}{changed or ' (the letter needed no change)'}"
    if res.action == "use_said":
        said = f" — the letter now says {d.said_value}" if res.edits else ""
        return f"✓ What was said is right{said}{changed or ' (the letter needed no change)'}"
    if res.action == "keep_both":
        return f"✓ Both kept: {agreed_wording(d)}" + ("" if res.edits else " (already in the letter)")
    if res.action == "fix":
        return "✓ Fixed in the letter"
    return f"✓ Dismissed: {res.reason}" if res.reason else "✓ Dismissed"


def _with_show(text: QLabel, show: QPushButton) -> QHBoxLayout:
    """A line of the card and its "Show" button, top-aligned beside the wrapped text."""
    row = QHBoxLayout()
    row.addWidget(text, 1)
    row.addWidget(show, 0, Qt.AlignmentFlag.AlignTop)
    return row


class DiscrepancyItem(QFrame):
    resolved = Signal(str, object)  # id, Resolution
    undo = Signal(str)  # id: reopen it, reversing what it wrote
    show_in_letter = Signal(str)
    show_in_transcript = Signal(str)

    def __init__(self, d: Discrepancy, where: Place | None) -> None:
        super().__init__()
        self.d = d
        # Focus rests on the card after a resolution (its buttons disappear), never on the next
        # card's button, so a repeated Space cannot clear the checklist.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._tone = "alertCard" if d.severity == "high" else "warnCard"
        self.setObjectName(self._tone)
        self.setAccessibleName(f"Discrepancy: {d.description}")
        lay = vbox(self, (12, 10, 12, 10), 4)
        head = label(
            f"{'⚠ ' if d.severity == 'high' else ''}{KIND_LABELS.get(d.kind, d.kind)}: {d.description}",
            wrap=True,
        )
        head.setStyleSheet("font-weight: 700;")
        lay.addWidget(head)
        said = (
            f"Said at {fmt_time(d.transcript.start_s)}"
            if d.transcript.start_s is not None
            else "In the transcript"
        )
        to_transcript = button("Show", accessible=f"Show in the transcript: {d.description}")
        to_transcript.setToolTip("Show these words in the transcript")
        to_transcript.clicked.connect(lambda: self.show_in_transcript.emit(self.d.id))
        lay.addLayout(_with_show(label(f"{said}: “{d.transcript.text}”", wrap=True, selectable=True), to_transcript))
        if d.record_text:
            src = f"  ({d.record_source.reference})" if d.record_source else ""
            lay.addWidget(label(f"Record: {d.record_text}{src}", wrap=True, selectable=True))
        self.where = label("", "caption", wrap=True)
        self.to_letter = button("Show", accessible=f"Show in the letter: {d.description}")
        self.to_letter.clicked.connect(lambda: self.show_in_letter.emit(self.d.id))
        lay.addLayout(_with_show(self.where, self.to_letter))
        self.set_where(where)

        self.actions = QWidget()
        # One above the other: side by side, values such as "twice a day" made the card wider than
        # the checklist, and every card's text was cut at the panel's edge.
        row = QVBoxLayout(self.actions)
        row.setContentsMargins(0, 4, 0, 0)
        row.setSpacing(4)
        self.record_button: QPushButton | None = None
        self.said_button: QPushButton | None = None
        if d.record_value and d.said_value:  # two values to choose between: the letter takes one
            self.record_button = button(
                f"Use record: {d.record_value}", accessible=f"Use the record's value: {d.description}"
            )
            self.record_button.setToolTip(
                f"The record is right: the letter will say {d.record_value} wherever it gives this value"
            )
            self.said_button = button(
                f"Use what was said: {d.said_value}", accessible=f"Use what was said: {d.description}"
            )
            self.said_button.setToolTip(
                f"What was said is right: the letter will say {d.said_value} wherever it gives this value"
            )
            self.record_button.clicked.connect(lambda: self._resolve("use_record"))
            self.said_button.clicked.connect(lambda: self._resolve("use_said"))
            row.addWidget(self.record_button)
            row.addWidget(self.said_button)
        self.keep_button = button("Keep both", accessible=f"Keep both: {d.description}")
        self.keep_button.setToolTip(f"Both are true: the letter will say “{agreed_wording(d)}”")
        self.keep_button.clicked.connect(lambda: self._resolve("keep_both"))
        row.addWidget(self.keep_button)
        lay.addWidget(self.actions)

        self.reason = QLineEdit()
        self.reason.setAccessibleName(f"Reason to dismiss: {d.description}")
        self.dismiss_button = button("Dismiss", accessible=f"Dismiss: {d.description}")
        self.why: QComboBox | None = None
        if is_red(d):
            self.why = QComboBox()
            # Sized to the panel, not to its longest reason (that widened every card past the edge).
            self.why.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.why.setMinimumContentsLength(16)
            self.why.setAccessibleName(f"Why dismiss: {d.description}")
            self.why.addItem("Why dismiss? Choose a reason…", "")
            for text in SPECIFIC_REASONS["allergy" if d.kind.startswith("allergy") else "other"]:
                self.why.addItem(text, text)
            self.why.currentIndexChanged.connect(lambda _i: self._update_dismiss())
            self.reason.setPlaceholderText("Note (optional)")
        else:
            self.reason.setPlaceholderText("Reason to dismiss")
        self.reason.textChanged.connect(lambda _t: self._update_dismiss())
        self.dismiss_button.clicked.connect(lambda: self._resolve("dismiss", self.dismiss_reason()))
        self.reason.returnPressed.connect(self.dismiss_button.click)
        if self.why is not None:
            lay.addWidget(self.why)
        self.dismiss_row = QWidget()
        row2 = QHBoxLayout(self.dismiss_row)
        row2.setContentsMargins(0, 0, 0, 0)
        row2.addWidget(self.reason, 1)
        row2.addWidget(self.dismiss_button)
        lay.addWidget(self.dismiss_row)
        self._update_dismiss()

        done_row = QHBoxLayout()
        self.outcome = label("", wrap=True)
        self.outcome.setStyleSheet("font-weight: 700; color: #1B7A42;")
        done_row.addWidget(self.outcome, 1)
        self.undo_button = button("Undo", accessible=f"Undo the resolution: {d.description}")
        self.undo_button.setToolTip("Reopen this item and take back what it changed in the letter")
        self.undo_button.clicked.connect(lambda: self.undo.emit(self.d.id))
        done_row.addWidget(self.undo_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(done_row)
        self.undo_button.hide()
        if d.resolution:
            self.show_resolution(d.resolution)

    def set_where(self, where: Place | None) -> None:
        if where is None:
            self.where.setText("In the letter: not mentioned")
        else:
            self.where.setText(f"In the letter: {where.heading}, “{where.text}”")
        enable(
            self.to_letter,
            where is not None,
            "The letter does not mention this",
            "Show this place in the letter",
        )

    def dismiss_reason(self) -> str | None:
        """The stated reason: the chosen specific one (plus the note) for a red conflict; the typed
        one otherwise. None while there is none."""
        note = self.reason.text().strip()
        if self.why is None:
            return note or None
        chosen = str(self.why.currentData() or "")
        if not chosen:
            return None
        return f"{chosen}: {note}" if note else chosen

    def _update_dismiss(self) -> None:
        ok = self.dismiss_reason() is not None
        enable(self.dismiss_button, ok,
               "Choose why above first" if self.why is not None else "Type the reason to dismiss first",
               "Dismiss: not a discrepancy, for the reason given")  # fmt: skip

    def _resolve(self, action: str, reason: str | None = None) -> None:
        res = Resolution(action=action, reason=reason)  # type: ignore[arg-type]
        self.resolved.emit(self.d.id, res)

    def show_resolution(self, res: Resolution) -> None:
        self.d.resolution = res
        self.outcome.setText(outcome_text(self.d, res))
        if self.isAncestorOf(QApplication.focusWidget()):
            self.setFocus()  # keep focus here as the buttons go
        self.actions.hide()
        self.dismiss_row.hide()
        if self.why is not None:
            self.why.hide()
        self.outcome.show()
        self.undo_button.show()
        self.setObjectName("infoCard")
        repolish(self)

    def show_open(self) -> None:
        """Reopened (undone): the choices come back."""
        self.d.resolution = None
        self.outcome.setText("")
        self.outcome.hide()
        self.undo_button.hide()
        self.actions.show()
        self.dismiss_row.show()
        if self.why is not None:
            self.why.show()
        self.setObjectName(self._tone)
        repolish(self)

    def signed(self) -> None:
        """Nothing can be undone once the letter is signed."""
        self.undo_button.hide()


class ReviewScreen(QWidget):
    section_edited = Signal(str, str)
    regenerate_section = Signal(str, str)
    resolve = Signal(str, object)
    undo_resolution = Signal(str)
    sign_off = Signal()
    change_doc_type = Signal(str)
    discard = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.document: ClinicalDocument | None = None
        self.cards: dict[str, SectionCard] = {}
        self.items: dict[str, DiscrepancyItem] = {}
        self.busy_reasons: set[str] = set()
        self._demo = False
        outer = vbox(self, (20, 12, 20, 10), 8)
        self._strip_holder = QVBoxLayout()
        outer.addLayout(self._strip_holder)
        top = QHBoxLayout()
        self.doc_type = QComboBox()
        for key, text in DOC_TYPE_LABELS.items():
            self.doc_type.addItem(text, key)
        self.doc_type.setAccessibleName("Document type")
        self.doc_type.activated.connect(lambda _i: self.change_doc_type.emit(self.doc_type.currentData()))
        self.status = badge("Draft", "warn", "Letter status: draft")
        self.progress_note = label("", "caption")
        self.discard_button = button("Discard draft", "danger")
        self.discard_button.clicked.connect(self.discard)
        self.sign_button = button("✓ Sign off  (Ctrl+Shift+S)", "primary", accessible="Sign off")
        self.sign_button.clicked.connect(self.sign_off)
        top.addWidget(label("Document:", "caption"))
        top.addWidget(self.doc_type)
        top.addWidget(self.status)
        top.addStretch(1)
        top.addWidget(self.discard_button)
        top.addWidget(self.sign_button)
        outer.addLayout(top)
        self.progress_note.setWordWrap(True)  # warnings and progress, on their own line
        outer.addWidget(self.progress_note)
        self.aside_note = label("", "caption", wrap=True, selectable=True)  # what the writer was told
        self.aside_note.setAccessibleName("Your note to the letter writer")
        self.aside_note.hide()
        outer.addWidget(self.aside_note)

        split = QSplitter(Qt.Orientation.Horizontal)
        letter_body = QWidget()
        self._sections = vbox(letter_body, (4, 4, 12, 4), 10)
        self._sections.addStretch(1)
        self._letter_scroll = scroll_page(letter_body)
        split.addWidget(self._letter_scroll)

        side = QWidget()
        sl = vbox(side, (8, 0, 0, 0))
        self.tabs = QTabWidget()
        check_body = QWidget()
        self._checklist = QVBoxLayout(check_body)
        self._checklist.setSpacing(8)
        check_scroll = scroll_page(check_body)
        check_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tabs.addTab(check_scroll, "Checklist")
        facts_page = QWidget()
        fl = QVBoxLayout(facts_page)
        self.facts = QListWidget()
        self.facts.setAccessibleName("Fact check: click a fact to see its source")
        self.facts.currentItemChanged.connect(self._fact_selected)
        fl.addWidget(self.facts, 2)
        fl.addWidget(label("Source of the selected fact", "caption"))
        self.source_view = QTextBrowser()
        self.source_view.setAccessibleName("Source of the selected fact")
        fl.addWidget(self.source_view, 1)
        self.tabs.addTab(facts_page, "Fact check")
        self.transcript_view = QPlainTextEdit()
        self.transcript_view.setReadOnly(True)
        self.transcript_view.setAccessibleName("Transcript")
        self.tabs.addTab(self.transcript_view, "Transcript")
        # F8 walks the open discrepancies, as IDEs walk problems: the card, and its place in the letter.
        next_item = QShortcut(QKeySequence(Qt.Key.Key_F8), self)
        next_item.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        next_item.activated.connect(self.next_unresolved)
        sl.addWidget(self.tabs)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 420])
        outer.addWidget(split, 1)

    # --- building -------------------------------------------------------------------------
    def start(self, ctx: PatientContext | None, name: str, transcript: Transcript, doc_type: str) -> None:
        clear_layout(self._strip_holder)
        self._strip_holder.addWidget(patient_strip(ctx, name))
        for c in self.cards.values():
            c.setParent(None)
            c.deleteLater()
        self.cards.clear()
        self.items.clear()
        clear_layout(self._checklist)
        self._checklist.addWidget(
            label("Discrepancies appear here when the letter is written.", "caption", wrap=True)
        )
        self._checklist.addStretch(1)
        self.facts.clear()
        self.source_view.clear()
        self.document = None
        self._demo = False
        self.transcript_view.setPlainText(transcript.text)
        i = self.doc_type.findData(doc_type)
        self.doc_type.setCurrentIndex(max(i, 0))
        self.busy_reasons = {"writing"}
        self._refresh()

    def _card(self, key: str, heading: str) -> SectionCard:
        c = self.cards.get(key)
        if c is None:
            c = SectionCard(key, heading)
            c.edited.connect(self.section_edited)
            c.edited.connect(lambda *_: self._refresh())  # an empty section filled (or emptied)
            c.regenerate.connect(self.regenerate_section)
            c.fact_at.connect(self._show_fact)
            self.cards[key] = c
            self._sections.insertWidget(self._sections.count() - 1, c)
        return c

    def on_section_event(self, ev: SectionDelta) -> None:
        c = self._card(ev.key, ev.heading)
        c.set_text(ev.text)
        c.set_streaming(not ev.done)
        if not ev.done:
            note = writing_note(ev)
        elif any(card.streaming for card in self.cards.values()):
            note = self.progress_note.text()  # others are still being written: keep saying so
        else:
            note = ""
        if self.progress_note.text() != note:
            self.progress_note.setText(note)

    def set_document(self, doc: ClinicalDocument) -> None:
        """The finished document: final text for every section, discrepancies, fact check."""
        self.document = doc
        self._demo = bool(doc.model and doc.model.demo)
        keys = [s.key for s in doc.sections]
        for key in list(self.cards):
            if key not in keys:
                self.cards.pop(key).deleteLater()
        for s in doc.sections:
            c = self._card(s.key, s.heading)
            c.set_text(s.content)
            c.set_streaming(False)
            c.set_model_tag(s, self._demo)
            c.set_facts([f for f in doc.fact_check if f.section_key == s.key])
            self._sections.removeWidget(c)
            self._sections.insertWidget(self._sections.count() - 1, c)
        self._build_checklist(doc.discrepancies)
        self._build_facts(doc.fact_check)
        self.busy_reasons.discard("writing")
        # Each warning is a sentence: shown one after another, each ending in a full stop.
        self.progress_note.setText(
            " ".join(w if w.endswith((".", "!", "?")) else f"{w}." for w in doc.warnings)
        )
        self._refresh()

    def replace_section(self, doc: ClinicalDocument, key: str) -> None:
        """A regenerated document: take its new section and fact check; keep the other sections'
        text as the clinician has it now."""
        section = next(s for s in doc.sections if s.key == key)
        if self.document is not None:
            doc = doc.model_copy(deep=True)
            doc.discrepancies = self.document.discrepancies  # resolutions made meanwhile
        self.document = doc
        c = self._card(section.key, section.heading)
        c.set_text(section.content)
        c.set_streaming(False)
        c.set_model_tag(section, self._demo)
        c.set_facts([f for f in doc.fact_check if f.section_key == key])
        self._build_facts(doc.fact_check)
        self.busy_reasons.discard(f"regen:{section.key}")
        self.progress_note.setText(f"“{section.heading}” rewritten.")
        self._refresh()

    def update_checks(self, doc: ClinicalDocument, key: str) -> None:
        """A section's text was saved and checked again: its facts, the fact list and the warnings
        follow the current text (never the model's earlier text)."""
        if self.document is None:
            return
        self.document.fact_check = doc.fact_check
        self.document.warnings = doc.warnings
        card = self.cards.get(key)
        if card is not None and not card.dirty:  # typed on since: the next save checks again
            card.set_facts([f for f in doc.fact_check if f.section_key == key])
        self._build_facts(doc.fact_check)
        self.progress_note.setText(
            " ".join(w if w.endswith((".", "!", "?")) else f"{w}." for w in doc.warnings)
        )

    def section_failed(self, key: str, message: str) -> None:
        c = self.cards.get(key)
        if c is not None:
            c.set_streaming(False)
            if self.document is not None:
                for s in self.document.sections:
                    if s.key == key:
                        c.set_text(s.content)
                        c.set_model_tag(s, self._demo)
        self.busy_reasons.discard(f"regen:{key}")
        self.progress_note.setText(f"Could not regenerate: {message} The original text is kept.")
        self._refresh()

    def mark_regenerating(self, key: str) -> None:
        self.busy_reasons.add(f"regen:{key}")
        if key in self.cards:
            self.cards[key].flush()
            self.cards[key].set_streaming(True)
        self._refresh()

    def generation_failed(self, message: str) -> None:
        self.busy_reasons.discard("writing")
        for c in self.cards.values():
            c.set_streaming(False)
        self.progress_note.setText(message)
        self._refresh()

    def _build_checklist(self, discrepancies: list[Discrepancy]) -> None:
        clear_layout(self._checklist)
        self.items.clear()
        if not discrepancies:
            self._checklist.addWidget(
                label("No discrepancies between the conversation and the record.", wrap=True)
            )
        else:
            self._checklist.addWidget(label("F8: next open item", "caption"))
        current = self.current_document()
        for d in discrepancies:
            item = DiscrepancyItem(d, locate(current, d) if current is not None else None)
            item.resolved.connect(self.resolve)
            item.undo.connect(self.undo_resolution)
            item.show_in_letter.connect(self.show_in_letter)
            item.show_in_transcript.connect(self.show_in_transcript)
            self.items[d.id] = item
            self._checklist.addWidget(item)
        self._checklist.addStretch(1)

    def _discrepancy(self, discrepancy_id: str) -> Discrepancy | None:
        if self.document is None:
            return None
        return next((d for d in self.document.discrepancies if d.id == discrepancy_id), None)

    def show_in_letter(self, discrepancy_id: str) -> None:
        """Bring the letter's words about this discrepancy into view, marked."""
        d = self._discrepancy(discrepancy_id)
        current = self.current_document()
        if d is None or current is None:
            return
        if d.resolution is not None and d.resolution.edits:
            self._mark_edits(d)
            return
        where = locate(current, d)
        if where is not None and where.section_key in self.cards:
            card = self.cards[where.section_key]
            card.highlight([(where.start, where.end)])
            self._letter_scroll.ensureWidgetVisible(card)

    def show_in_transcript(self, discrepancy_id: str) -> None:
        """Select the words in the transcript tab."""
        d = self._discrepancy(discrepancy_id)
        if d is None:
            return
        text = self.transcript_view.toPlainText()
        start, end = d.transcript.char_start, d.transcript.char_end
        if start is None or end is None or text[start:end] != d.transcript.text:
            start = text.find(d.transcript.text)  # a span without offsets: its words
            end = start + len(d.transcript.text)
        cur = QTextCursor(self.transcript_view.document())
        if start >= 0:
            cur.setPosition(start)
            cur.setPosition(min(end, len(text)), QTextCursor.MoveMode.KeepAnchor)
        self.transcript_view.setTextCursor(cur)
        self.transcript_view.ensureCursorVisible()
        self.tabs.setCurrentWidget(self.transcript_view)

    def next_unresolved(self) -> None:
        """Focus the next open discrepancy after the one with focus (wrapping), and show its place."""
        ids = [i for i, item in self.items.items() if item.d.resolution is None]
        if not ids:
            self.progress_note.setText("No open discrepancies.")
            return
        order = list(self.items)
        focused = next((i for i, item in self.items.items() if item.isAncestorOf(QApplication.focusWidget())
                        or item is QApplication.focusWidget()), None)  # fmt: skip
        after = order.index(focused) if focused in order else -1
        following = [i for i in ids if order.index(i) > after]
        target = (following or ids)[0]
        self.tabs.setCurrentIndex(0)
        item = self.items[target]
        item.setFocus()
        scroll = self.tabs.widget(0)
        if isinstance(scroll, QScrollArea):
            scroll.ensureWidgetVisible(item)
        self.show_in_letter(target)

    def _mark_edits(self, d: Discrepancy) -> None:
        if d.resolution is None:
            return
        by_key: dict[str, list[tuple[int, int]]] = {}
        for e in d.resolution.edits:
            by_key.setdefault(e.section_key, []).append((e.start, e.start + len(e.after)))
        for key, ranges in by_key.items():
            if key in self.cards:
                self.cards[key].highlight(ranges)
        first = next((self.cards[k] for k in by_key if k in self.cards), None)
        if first is not None:
            self._letter_scroll.ensureWidgetVisible(first)

    def apply_resolution(self, doc: ClinicalDocument, discrepancy_id: str) -> None:
        """The letter as saved after a resolution or its undo: the sections that resolution rewrote
        (only those: anything else on screen may be typing not yet saved) as the clinician's, the
        item's new state, the recomputed checks; the change is highlighted."""
        if self.document is None:
            return
        before = self._discrepancy(discrepancy_id)
        after = next((d for d in doc.discrepancies if d.id == discrepancy_id), None)
        edits = (after.resolution.edits if after is not None and after.resolution is not None
                 else before.resolution.edits if before is not None and before.resolution is not None else [])  # fmt: skip
        changed = {e.section_key for e in edits}
        self.document = doc.model_copy(deep=True)
        for s in self.document.sections:
            if s.key in changed and s.key in self.cards:
                card = self.cards[s.key]
                card.set_text(s.content)
                card.set_model_tag(s, self._demo)
                card.set_facts([f for f in doc.fact_check if f.section_key == s.key])
        self._build_facts(doc.fact_check)
        d = self._discrepancy(discrepancy_id)
        item = self.items.get(discrepancy_id)
        if d is not None and item is not None:
            if d.resolution is None:
                item.show_open()
            else:
                item.show_resolution(d.resolution)
                self._mark_edits(d)
        current = self.current_document()
        for i, it in self.items.items():  # places move when text changes
            dd = self._discrepancy(i)
            if dd is not None and current is not None:
                it.d = dd
                it.set_where(locate(current, dd))
        self._refresh()

    def _build_facts(self, facts: list[FactCheckItem]) -> None:
        self.facts.clear()
        if not facts:  # an empty tab must not look like a failure: say why it is empty
            written = self.document is not None and any(
                sec.kind == "narrative" and sec.content.strip() for sec in self.document.sections
            )
            why = (
                "Nothing to check: the written sections name no drug, dose, frequency, allergy, test "
                "value, number or date."
                if written
                else "Nothing to check yet: no section has text. The fact check runs on each section as "
                "it is written or saved."
            )
            empty = QListWidgetItem(why)
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.facts.addItem(empty)
            self.source_view.setPlainText(why)
            return
        for f in facts:
            mark = "✓" if f.supported else "?"
            item = QListWidgetItem(f"{mark}  {f.text}   ·  {f.kind}  ·  {f.section_key}")
            item.setData(Qt.ItemDataRole.UserRole, f)
            if not f.supported:
                item.setForeground(QColor("#9A5000"))
            self.facts.addItem(item)

    def _fact_selected(self, item: QListWidgetItem | None, _prev: object = None) -> None:
        fact = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if fact is not None:  # the "nothing to check" line carries none
            self._show_fact(fact)

    def _show_fact(self, fact: FactCheckItem) -> None:
        self.source_view.setPlainText(evidence_text(fact))
        if self.tabs.currentIndex() != 1:
            self.tabs.setCurrentIndex(1)

    # --- state ---------------------------------------------------------------------------
    def flush_edits(self) -> None:
        for c in self.cards.values():
            c.flush()

    def current_document(self) -> ClinicalDocument | None:
        """The document with the clinician's edits applied."""
        if self.document is None:
            return None
        doc = self.document.model_copy(deep=True)
        for s in doc.sections:
            if s.key in self.cards:
                s.content = self.cards[s.key].text()
        return doc

    def open_discrepancies(self) -> int:
        if self.document is None:
            return 0
        return sum(d.resolution is None for d in self.document.discrepancies)

    def blockers(self) -> list[str]:
        why = []
        if self.document is None or "writing" in self.busy_reasons:
            why.append("the letter is still being written")
        if any(r.startswith("regen:") for r in self.busy_reasons):
            why.append("a section is being rewritten")
        n = self.open_discrepancies()
        if n:
            why.append(f"{n} discrepanc{'y' if n == 1 else 'ies'} to resolve")
        empty = self.empty_sections()
        if empty:
            why.append("write " + ", ".join(f"“{h}”" for h in empty) + " (empty)")
        return why

    def empty_sections(self) -> list[str]:
        """Headings of the sections the clinician must write before signing (narrative, no text)."""
        doc = self.current_document()
        if doc is None:
            return []
        return [s.heading for s in doc.sections if s.kind == "narrative" and not s.content.strip()]

    # --- intents for the controller ------------------------------------------------------------
    def set_aside(self, aside: str) -> None:
        """The clinician's note to the letter writer, shown beside the draft it shaped."""
        self.aside_note.setText(f"Your note to the letter writer: {aside}" if aside.strip() else "")
        self.aside_note.setVisible(bool(aside.strip()))

    def set_note(self, text: str) -> None:
        self.progress_note.setText(text)

    def set_transcript(self, text: str) -> None:
        self.transcript_view.setPlainText(text)

    def show_doc_type(self, doc_type: str) -> None:
        self.doc_type.setCurrentIndex(max(self.doc_type.findData(doc_type), 0))

    def can_sign(self) -> bool:
        return self.sign_button.isEnabled()

    def explain_blockers(self) -> None:
        """Sign off asked for while it cannot be done: say why, where the clinician is looking."""
        why = self.blockers()
        if why:
            self.progress_note.setText("Not signed yet: " + "; ".join(why) + ".")

    def signing(self) -> None:
        enable(self.sign_button, False, "Signing off: a moment")
        self.progress_note.setText("Signing off, writing the PDF and the record…")

    def sign_failed(self) -> None:
        self.progress_note.setText("")
        self._refresh()

    def _refresh(self) -> None:
        why = self.blockers()
        enable(self.sign_button, not why, "Not yet: " + "; ".join(why), "Sign off the letter")
        n = self.open_discrepancies()
        if self.document is None:
            self.tabs.setTabText(0, "Checklist")
        else:
            self.tabs.setTabText(0, f"Checklist ({n} open)" if n else "Checklist ✓")
        if "writing" in self.busy_reasons:
            set_badge(self.status, "Writing…", "info", "Letter status: being written")
        elif why:
            set_badge(self.status, "Draft — needs review", "warn", "Letter status: draft, needs review")
        else:
            set_badge(self.status, "Ready to sign", "ok", "Letter status: ready to sign")
        enable(self.discard_button, "writing" not in self.busy_reasons,
               "The letter is being written: cancel it on the progress screen", "Discard this draft")  # fmt: skip
