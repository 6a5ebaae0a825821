"""Processing: transcript -> record context -> letter, each with its progress, and a cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QProgressBar, QVBoxLayout, QWidget

from clarke_desktop.gui.widgets import (
    badge,
    button,
    card,
    clear_layout,
    enable,
    label,
    notice,
    repolish,
    set_badge,
    vbox,
)
from clarke_desktop.schemas import PipelineProgress, PipelineStage

# The pipeline reports overall percentages; each stage owns a slice of them.
STAGE_SPAN = {
    PipelineStage.TRANSCRIBING: (0, 30),
    PipelineStage.RETRIEVING_CONTEXT: (30, 45),
    PipelineStage.GENERATING_DOCUMENT: (45, 100),
}

STAGES: list[tuple[PipelineStage, str]] = [
    (PipelineStage.TRANSCRIBING, "1  Transcript"),
    (PipelineStage.RETRIEVING_CONTEXT, "2  Patient record"),
    (PipelineStage.GENERATING_DOCUMENT, "3  Letter"),
]


class StageRow(QFrame):
    def __init__(self, title: str) -> None:
        super().__init__()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 6, 0, 6)
        self.title = label(title, "h3")
        self.state = badge("Waiting", "neutral")
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setFixedHeight(12)
        self.bar.setAccessibleName(f"{title.strip('123 ')} progress")
        self.message = label("", "caption", wrap=True)
        grid.addWidget(self.title, 0, 0)
        grid.addWidget(self.state, 0, 1, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.bar, 1, 0, 1, 2)
        grid.addWidget(self.message, 2, 0, 1, 2)

    def set(self, state: str, pct: int | None = None, message: str | None = None) -> None:
        text, tone = {
            "waiting": ("Waiting", "neutral"),
            "active": ("Working…", "info"),
            "done": ("Done ✓", "ok"),
            "failed": ("Failed", "bad"),
            "cancelled": ("Cancelled", "neutral"),
        }[state]
        set_badge(self.state, text, tone)
        if pct is not None:
            self.bar.setValue(pct)
        self.bar.setProperty("stage", "done" if state == "done" else "")
        repolish(self.bar)
        if message is not None:
            self.message.setText(message)


class ProcessingScreen(QWidget):
    cancel = Signal()
    back = Signal()
    retry = Signal()

    def __init__(self) -> None:
        super().__init__()
        outer = vbox(self, (48, 28, 48, 20), 14)
        self.title = label("Writing the letter", "h1")
        outer.addWidget(self.title)
        self.subtitle = label("You can keep reading the record; this runs in the background.", "caption")
        outer.addWidget(self.subtitle)
        box = card(padding=22)
        self.rows: dict[PipelineStage, StageRow] = {}
        for stage, title in STAGES:
            row = StageRow(title)
            self.rows[stage] = row
            box.layout().addWidget(row)
        outer.addWidget(box)
        self.elapsed = label("", "caption")
        outer.addWidget(self.elapsed)
        self._alerts = QVBoxLayout()
        outer.addLayout(self._alerts)
        outer.addStretch(1)
        foot = QHBoxLayout()
        self.cancel_button = button("Cancel", "danger", accessible="Cancel letter writing", tip="Esc")
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button = button("Try again", "primary")
        self.retry_button.clicked.connect(self.retry)
        self.back_button = button("← Back to consultation")
        self.back_button.clicked.connect(self.back)
        foot.addWidget(self.back_button)
        foot.addStretch(1)
        foot.addWidget(self.retry_button)
        foot.addWidget(self.cancel_button)
        outer.addLayout(foot)
        self.reset()

    def reset(self) -> None:
        for row in self.rows.values():
            row.set("waiting", 0, "")
        clear_layout(self._alerts)
        self.elapsed.setText("")
        enable(self.cancel_button, True, "", "Stop writing the letter")
        self.cancel_button.show()
        self.retry_button.hide()
        self.back_button.hide()

    def on_progress(self, p: PipelineProgress) -> None:
        order = [s for s, _ in STAGES]
        if p.stage == PipelineStage.COMPLETE:
            for row in self.rows.values():
                row.set("done", 100)
            enable(self.cancel_button, False, "Finished: nothing to cancel")
            return
        if p.stage == PipelineStage.FAILED:
            self.fail(p.message)
            return
        idx = order.index(p.stage)
        for s in order[:idx]:
            self.rows[s].set("done", 100)
        lo, hi = STAGE_SPAN[p.stage]
        local = max(0, min(100, round((p.progress_pct - lo) * 100 / (hi - lo))))
        done = local >= 100 or (p.stage == PipelineStage.TRANSCRIBING and p.progress_pct >= hi)
        self.rows[p.stage].set("done" if done else "active", 100 if done else max(local, 3), p.message)

    def cancelling(self) -> None:
        enable(self.cancel_button, False, "Cancelling: stopping at the next safe point")

    def set_elapsed(self, seconds: float) -> None:
        self.elapsed.setText(f"Elapsed {int(seconds) // 60:d}:{int(seconds) % 60:02d}")

    def fail(self, message: str, *, cancelled: bool = False) -> None:
        for row in self.rows.values():  # the stage that was running (or due next) failed
            if not row.state.text().startswith("Done"):
                row.set("cancelled" if cancelled else "failed")
                break
        clear_layout(self._alerts)
        if cancelled:
            self._alerts.addWidget(
                notice("Letter writing was cancelled. The transcript is kept.", "info", "Cancelled")
            )
        else:
            self._alerts.addWidget(notice(message, "alert", "The letter could not be written"))
        self.cancel_button.hide()
        self.retry_button.show()
        self.back_button.show()
