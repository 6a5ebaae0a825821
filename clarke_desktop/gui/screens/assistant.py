"""Chart assistant panel: ask about the record, watch the steps, approve or reject proposed writes."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLineEdit, QListWidget, QTextBrowser, QVBoxLayout, QWidget

from clarke_desktop.gui.widgets import badge, button, clear_layout, enable, label, notice, set_badge, vbox
from clarke_desktop.session.views import AssistantAnswer, AssistantStep, Proposal

STEP_WORDS = {
    "search": "Searched",
    "read": "Read",
    "reason": "Note",
    "answer": "Answered",
    "propose": "Proposed",
}


class ProposalRow(QFrame):
    decide = Signal(str, bool)

    def __init__(self, p: Proposal) -> None:
        super().__init__()
        self.setObjectName("infoCard")
        lay = vbox(self, (10, 8, 10, 8))
        lay.addWidget(label(f"Proposed change to {p.resource_type}: {p.summary}", wrap=True))
        row = QHBoxLayout()
        self.state = badge("Waiting for you", "warn")
        self.approve = button("Approve", "primary", accessible=f"Approve: {p.summary}")
        self.reject = button("Reject", accessible=f"Reject: {p.summary}")
        self.approve.clicked.connect(lambda: self.decide.emit(p.id, True))
        self.reject.clicked.connect(lambda: self.decide.emit(p.id, False))
        row.addWidget(self.state)
        row.addStretch(1)
        row.addWidget(self.reject)
        row.addWidget(self.approve)
        lay.addLayout(row)
        self.set_status(p.status)

    def set_status(self, status: str) -> None:
        look = {
            "pending": ("Waiting for you", "warn"),
            "approved": ("Approved ✓ written", "ok"),
            "rejected": ("Rejected", "neutral"),
        }[status]
        set_badge(self.state, *look)
        self.approve.setVisible(status == "pending")
        self.reject.setVisible(status == "pending")


class AssistantPanel(QWidget):
    ask = Signal(str)
    decide = Signal(str, bool)

    def __init__(self) -> None:
        super().__init__()
        self.proposals: dict[str, ProposalRow] = {}
        lay = vbox(self, (12, 8, 12, 8), 8)
        self.patient = label("No patient open", "caption")
        lay.addWidget(self.patient)
        row = QHBoxLayout()
        self.question = QLineEdit()
        self.question.setPlaceholderText("Ask about this patient's record…")
        self.question.setAccessibleName("Question for the chart assistant")
        self.ask_button = button("Ask", "primary", accessible="Ask the chart assistant")
        self.ask_button.clicked.connect(self._ask)
        self.question.returnPressed.connect(self._ask)
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_button)
        lay.addLayout(row)
        lay.addWidget(label("Steps", "caption"))
        self.trace = QListWidget()
        self.trace.setAccessibleName("Chart assistant steps")
        # A step is a search or a sentence: wrapped in full, never cut at the panel's edge.
        self.trace.setWordWrap(True)
        self.trace.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.trace.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.trace.setMaximumHeight(220)
        lay.addWidget(self.trace)
        lay.addWidget(label("Answer", "caption"))
        self.answer = QTextBrowser()
        self.answer.setAccessibleName("Chart assistant answer")
        lay.addWidget(self.answer, 1)
        self._proposals = QVBoxLayout()
        lay.addLayout(self._proposals)
        self.set_patient(None)

    def set_patient(self, name: str | None) -> None:
        self.patient.setText(f"Record of {name}" if name else "Open a patient to ask about their record.")
        self.question.setEnabled(bool(name))
        enable(self.ask_button, bool(name), "Open a patient first", "Ask about this patient's record")
        self.trace.clear()
        self.answer.clear()
        clear_layout(self._proposals)
        self.proposals.clear()

    def _ask(self) -> None:
        q = self.question.text().strip()
        if not q:
            return
        self.trace.clear()
        self.answer.setPlainText("Working…")
        clear_layout(self._proposals)
        self.proposals.clear()
        enable(self.ask_button, False, "Working on the last question")
        self.ask.emit(q)

    def add_step(self, step: AssistantStep) -> None:
        text = f"{self.trace.count() + 1}. {STEP_WORDS.get(step.kind, step.kind.title())}: {step.text}"
        self.trace.addItem(text)
        self.trace.item(self.trace.count() - 1).setToolTip(text)
        self.trace.scrollToBottom()

    def set_answer(self, a: AssistantAnswer) -> None:
        enable(self.ask_button, True, "", "Ask about this patient's record")
        parts = []
        if a.demo_model:
            parts.append(
                "<p style='background:#F0D078;padding:4px'><b>Demo model — not for clinical use.</b></p>"
            )
        parts.append("<p>" + a.text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>")
        if a.citations:
            parts.append("<p><b>Sources:</b><br>" + "<br>".join(c.reference for c in a.citations) + "</p>")
        else:
            parts.append("<p><i>No record entries cited: treat this answer with caution.</i></p>")
        self.answer.setHtml("".join(parts))
        for p in a.proposals:
            r = ProposalRow(p)
            r.decide.connect(self.decide)
            self.proposals[p.id] = r
            self._proposals.addWidget(r)

    def set_failed(self, message: str) -> None:
        enable(self.ask_button, True, "", "Ask about this patient's record")
        self.answer.clear()
        clear_layout(self._proposals)
        self._proposals.addWidget(notice(message, "alert", "The assistant could not answer"))

    def decision_refused(self, proposal_id: str, message: str) -> None:
        """The approval was not accepted (a wrong password): the proposal stays open, with why."""
        card = self.proposals.get(proposal_id)
        if card is not None:
            set_badge(card.state, f"Not approved: {message}", "bad")

    def proposal_decided(self, p: Proposal) -> None:
        if p.id in self.proposals:
            self.proposals[p.id].set_status(p.status)
