"""Chart assistant panel: ask about the record, watch the steps, approve or reject proposed writes.

A proposal's card shows the complete proposed resource, one element a line, as plain text (never
rich text: a value cannot hide itself or restyle the card). What is approved is exactly what those
lines show: the service checks the resource against the digest taken when they were made. A
refused proposal (elements outside the whitelist) is shown with each reason and no Approve button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.gui.widgets import badge, button, clear_layout, enable, label, notice, set_badge, vbox
from clarke_desktop.session.views import AssistantAnswer, AssistantStep, Proposal

STEP_WORDS = {
    "search": "Searched",
    "read": "Read",
    "reason": "Note",
    "answer": "Answered",
    "propose": "Proposed",
}


def _plain(text: str, role: str | None = None) -> QLabel:
    """A wrapped, selectable label that shows its text as written (model text is never markup)."""
    lab = label(text, role, wrap=True, selectable=True)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    return lab


class ProposalRow(QFrame):
    decide = Signal(str, bool)

    def __init__(self, p: Proposal) -> None:
        super().__init__()
        self.setObjectName("infoCard")
        self.proposal = p
        lay = vbox(self, (10, 8, 10, 8))
        lay.addWidget(_plain(f"Proposed new {p.resource_type}: {p.summary}"))
        # Every element that would be written, one a line: nothing is written that is not shown here.
        self.details = _plain("\n".join(p.lines) if p.lines else "(the proposed entry could not be shown)")
        self.details.setAccessibleDescription(f"Everything the proposed {p.resource_type} would write")
        lay.addWidget(self.details)
        self.refusals = _plain(
            "Not offered for approval; these elements may not be written:\n"
            + "\n".join(f"• {r}" for r in p.refusals)
        )
        self.refusals.setVisible(bool(p.refusals))
        lay.addWidget(self.refusals)
        self.seal = _plain(
            f"Written exactly as shown (fingerprint {p.digest[:12]}), tagged as proposed by the chart "
            "assistant and approved by you.",
            "caption",
        )
        self.seal.setVisible(bool(p.digest) and p.status != "refused")
        lay.addWidget(self.seal)
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

    @property
    def can_approve(self) -> bool:
        """Only a proposal whose every element is on the card, sealed by its digest."""
        return bool(self.proposal.lines and self.proposal.digest)

    def set_status(self, status: str) -> None:
        look = {
            "pending": ("Waiting for you", "warn"),
            "approved": ("Approved ✓ written", "ok"),
            "rejected": ("Rejected", "neutral"),
            "refused": ("Refused: not offered for approval", "bad"),
        }[status]
        set_badge(self.state, *look)
        self.approve.setVisible(status == "pending")
        self.reject.setVisible(status == "pending")
        enable(
            self.approve,
            self.can_approve,
            "The proposed entry could not be shown in full, so it cannot be approved",
        )


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
        # The proposal cards scroll: a long proposal is read to its last line, never cut off.
        holder = QWidget()
        self._proposals = QVBoxLayout(holder)
        self._proposals.setContentsMargins(0, 0, 0, 0)
        self._proposals.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.proposals_area = QScrollArea()
        self.proposals_area.setWidgetResizable(True)
        self.proposals_area.setFrameShape(QFrame.Shape.NoFrame)
        self.proposals_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.proposals_area.setWidget(holder)
        lay.addWidget(self.proposals_area, 1)
        self.set_patient(None)

    def set_patient(self, name: str | None) -> None:
        self.patient.setText(f"Record of {name}" if name else "Open a patient to ask about their record.")
        self.question.setEnabled(bool(name))
        enable(self.ask_button, bool(name), "Open a patient first", "Ask about this patient's record")
        self.trace.clear()
        self.answer.clear()
        self._clear_proposals()

    def _clear_proposals(self) -> None:
        clear_layout(self._proposals)
        self.proposals.clear()
        self.proposals_area.setVisible(False)

    def _ask(self) -> None:
        q = self.question.text().strip()
        if not q:
            return
        self.trace.clear()
        self.answer.setPlainText("Working…")
        self._clear_proposals()
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
        self.proposals_area.setVisible(bool(a.proposals))

    def set_failed(self, message: str) -> None:
        enable(self.ask_button, True, "", "Ask about this patient's record")
        self.answer.clear()
        self._clear_proposals()
        self._proposals.addWidget(notice(message, "alert", "The assistant could not answer"))
        self.proposals_area.setVisible(True)

    def decision_refused(self, proposal_id: str, message: str) -> None:
        """The approval was not accepted (a wrong password): the proposal stays open, with why."""
        card = self.proposals.get(proposal_id)
        if card is not None:
            set_badge(card.state, f"Not approved: {message}", "bad")

    def proposal_decided(self, p: Proposal) -> None:
        if p.id in self.proposals:
            self.proposals[p.id].set_status(p.status)
