"""Patient context: what the record says, before and during the consultation.

Allergies come first, in red, in words ("ALLERGIES", substance, reaction); "no known allergies"
is shown explicitly so an empty list is never mistaken for "not checked".
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from clarke_desktop.clinical_text.record import no_known_allergy
from clarke_desktop.gui.widgets import button, card, clear_layout, enable, label, notice, scroll_page, vbox
from clarke_desktop.schemas import Allergy, LabResult, PatientContext
from clarke_desktop.uk_format import local_time, uk_date, unit_display

TREND_ARROWS = {"rising": "↑", "falling": "↓", "stable": "→"}


def _num(text: str | None) -> float | None:
    if not text:
        return None
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return float(m.group()) if m else None


def out_of_range(value: str, reference_range: str | None) -> str | None:
    """'H' / 'L' when the value lies outside a simple reference range ("3.5-5.3", "<48", ">60")."""
    v = _num(value)
    if v is None or not reference_range:
        return None
    rr = reference_range.replace("–", "-").replace(" ", "")
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?)(?:[^\d.].*)?", rr)
    if m:
        low, high = float(m.group(1)), float(m.group(2))
        return "H" if v > high else "L" if v < low else None
    m = re.fullmatch(r"(<=?|>=?)(-?\d+(?:\.\d+)?)(?:[^\d.].*)?", rr)
    if m:
        op, bound = m.group(1), float(m.group(2))
        if op.startswith("<") and (v > bound or (op == "<" and v == bound)):
            return "H"
        if op.startswith(">") and (v < bound or (op == ">" and v == bound)):
            return "L"
    return None


def trend_text(lab: LabResult) -> str:
    """Arrow against the previous value: '↑ from 48 (2025-03-12)'."""
    if lab.trend is None and lab.previous_value is None:
        return "—  (no previous)"
    arrow = TREND_ARROWS.get(lab.trend or "", "")
    if not arrow:
        prev, now = _num(lab.previous_value), _num(lab.value)
        if prev is not None and now is not None:
            arrow = "↑" if now > prev else "↓" if now < prev else "→"
    prev = f" from {lab.previous_value}" if lab.previous_value else ""
    when = f" ({uk_date(lab.previous_date)})" if lab.previous_date else ""
    return f"{arrow}{prev}{when}".strip()


class AllergyBanner(QFrame):
    def __init__(self, allergies: list[Allergy], *, incomplete: bool = False) -> None:
        """`incomplete`: some of the patient's allergy records could not be loaded; then an empty
        list must never read as "no allergies"."""
        super().__init__()
        lay = vbox(self, (16, 10, 16, 10), 4)
        nkda = [a for a in allergies if no_known_allergy(a.substance)]
        allergies = [a for a in allergies if not no_known_allergy(a.substance)]  # a statement is no alarm
        if allergies:
            self.setObjectName("allergyBanner")
            title = QLabel(f"⚠  ALLERGIES ({len(allergies)})")
            title.setObjectName("allergyTitle")
            lay.addWidget(title)
            for a in allergies:
                bits = [a.substance.upper()]
                if a.reaction:
                    bits.append(a.reaction)
                if a.severity or a.criticality:
                    bits.append(
                        ", ".join(
                            x for x in (a.severity, a.criticality and f"criticality {a.criticality}") if x
                        )
                    )
                item = QLabel("  —  ".join(bits))
                item.setObjectName("allergyItem")
                item.setWordWrap(True)
                item.setToolTip(f"Source: {a.source.reference}")
                lay.addWidget(item)
            if incomplete:
                more = QLabel("…and part of the allergy record could not be loaded: ask the patient.")
                more.setObjectName("allergyItem")
                lay.addWidget(more)
            self.setAccessibleName("Allergies: " + "; ".join(a.substance for a in allergies)
                                   + ("; part of the allergy record could not be loaded" if incomplete else ""))  # fmt: skip
        elif incomplete:
            self.setObjectName("allergyBanner")
            title = QLabel("⚠  ALLERGIES: PART OF THE ALLERGY RECORD COULD NOT BE LOADED")
            title.setObjectName("allergyTitle")
            title.setWordWrap(True)
            lay.addWidget(title)
            lay.addWidget(QLabel("Ask the patient, and ask IT to fix the record (local-fhir quarantine list)."))
            self.setAccessibleName("Allergies: part of the allergy record could not be loaded")
            return
        else:
            self.setObjectName("nkdaBanner")
            t = QLabel("No known drug allergies" if nkda else "No known allergies recorded")
            if nkda:
                t.setToolTip(f"Recorded: {nkda[0].substance} ({nkda[0].source.reference})")
            t.setStyleSheet("font-weight: 700; font-size: 12pt; color: #5A6178;")
            lay.addWidget(t)
            self.setAccessibleName(t.text())


class LabTable(QTableWidget):
    HEADERS = ("Test", "Value", "Unit", "Reference range", "Date", "Trend vs previous")

    def __init__(self, labs: list[LabResult], name: str = "Recent laboratory results") -> None:
        super().__init__(len(labs), len(self.HEADERS))
        self.setHorizontalHeaderLabels(self.HEADERS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setAccessibleName(name)
        for r, lab in enumerate(labs):
            flag = out_of_range(lab.value, lab.reference_range)
            cells = (
                lab.name,
                f"{lab.value}{'  ' + flag if flag else ''}",
                unit_display(lab.unit),
                lab.reference_range or "—",
                uk_date(lab.date),
                trend_text(lab),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"Source: {lab.source.reference}")
                if c == 1:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                    if flag:
                        item.setForeground(QColor("#9A5000"))
                        item.setToolTip(f"Outside reference range ({'high' if flag == 'H' else 'low'})")
                self.setItem(r, c, item)
        header = self.horizontalHeader()
        # Every column keeps its full text (a clipped value or unit is worse than a scroll bar).
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.resizeRowsToContents()
        height = self.horizontalHeader().height() + sum(self.rowHeight(i) for i in range(self.rowCount())) + 6
        height += self.horizontalScrollBar().sizeHint().height()  # room for it when narrow
        self.setFixedHeight(max(height, 60))


def _list_card(title: str, lines: list[tuple[str, str]], empty: str) -> QFrame:
    box = card(padding=14)
    lay = box.layout()
    lay.setSpacing(4)
    lay.addWidget(label(title, "h3"))
    if not lines:
        lay.addWidget(label(empty, "caption"))
    for text, tip in lines:
        row = label("•  " + text, wrap=True)
        row.setToolTip(tip)
        lay.addWidget(row)
    return box


class PatientScreen(QWidget):
    start_consultation = Signal()
    back = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.context: PatientContext | None = None
        outer = vbox(self, (0, 0, 0, 0))
        body = QWidget()
        self._lay = vbox(body, (28, 18, 28, 18), 12)
        outer.addWidget(scroll_page(body))
        foot = QHBoxLayout()
        foot.setContentsMargins(28, 8, 28, 12)
        self.back_button = button("← Today's clinic", accessible="Back to today's clinic")
        self.start_button = button("Start consultation  (Ctrl+R)", "primary", accessible="Start consultation")
        enable(self.start_button, False, "Open a patient from today's clinic first")
        self.back_button.clicked.connect(self.back)
        self.start_button.clicked.connect(self.start_consultation)
        foot.addWidget(self.back_button)
        foot.addStretch(1)
        foot.addWidget(self.start_button)
        outer.addLayout(foot)

    def can_start(self) -> bool:
        return self.start_button.isEnabled()

    def show_loading(self, name: str) -> None:
        self.context = None
        clear_layout(self._lay)
        self._lay.addWidget(label(name, "h1"))
        self._lay.addWidget(label("Reading the record…", "caption"))
        self._lay.addStretch(1)
        enable(self.start_button, False, "Reading the record: a moment")

    def show_error(self, name: str, message: str) -> None:
        clear_layout(self._lay)
        self._lay.addWidget(label(name, "h1"))
        self._lay.addWidget(
            notice(
                message + " You can still record the consultation; the letter will be written from "
                "the conversation alone.",
                "alert",
                "The record could not be read",
            )
        )
        self._lay.addStretch(1)
        enable(self.start_button, True, "", "Start the consultation (Ctrl+R)")

    def set_context(self, ctx: PatientContext) -> None:
        self.context = ctx
        clear_layout(self._lay)
        d = ctx.demographics
        self._lay.addWidget(label(d.name, "h1"))
        facts = [f"NHS {d.nhs_number or 'not recorded'}", f"born {uk_date(d.date_of_birth)}"]
        if d.age is not None:
            facts.append(f"{d.age} years")
        if d.sex:
            facts.append(d.sex)
        demo = label("  ·  ".join(facts), selectable=True)
        demo.setStyleSheet("font-size: 12pt;")
        self._lay.addWidget(demo)
        if d.gp_name or d.gp_practice:
            self._lay.addWidget(
                label(f"GP: {', '.join(x for x in (d.gp_name, d.gp_practice) if x)}", "caption")
            )
        self._lay.addWidget(AllergyBanner(ctx.allergies, incomplete="AllergyIntolerance" in ctx.not_loaded))
        for w in ctx.retrieval_warnings:
            self._lay.addWidget(notice(w, "warn", "Part of the record could not be read"))
        for w in ctx.model_warnings:  # the record itself is complete: only the model's judgement is missing
            self._lay.addWidget(notice(w, "info", "Clinical flags from the EHR model"))
        if ctx.clinical_flags:
            self._lay.addWidget(
                notice(
                    "\n".join("• " + f for f in ctx.clinical_flags),
                    "info",
                    "Clinical flags (model-written, check)",
                )
            )

        grid = QGridLayout()
        grid.setSpacing(12)
        problems = [
            (
                p.name
                + (f" (since {uk_date(p.onset)})" if p.onset else "")
                + (f" — {p.status}" if p.status else ""),
                p.source.reference,
            )
            for p in ctx.problem_list
        ]
        meds = [
            (
                " ".join(x for x in (m.name, m.dose, m.frequency, m.route) if x) or (m.dosage_text or m.name),
                m.source.reference,
            )
            for m in ctx.medications
        ]
        grid.addWidget(_list_card("Problem list", problems, "No problems recorded"), 0, 0)
        grid.addWidget(_list_card("Medications", meds, "No current medications"), 0, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self._lay.addLayout(grid)

        labs_box = card(padding=14)
        labs_box.layout().addWidget(label("Recent results", "h3"))
        if ctx.recent_labs:
            labs_box.layout().addWidget(LabTable(ctx.recent_labs))
        else:
            labs_box.layout().addWidget(label("No recent results", "caption"))
        self._lay.addWidget(labs_box)
        vitals = getattr(ctx, "vital_signs", None) or []
        if vitals:
            vit_box = card(padding=14)
            vit_box.layout().addWidget(label("Vital signs", "h3"))
            vit_box.layout().addWidget(LabTable(vitals, "Vital signs"))
            self._lay.addWidget(vit_box)

        grid2 = QGridLayout()
        grid2.setSpacing(12)
        imaging = [
            (f"{uk_date(i.date)} {i.type}: {i.summary or ''}".strip(), i.source.reference)
            for i in ctx.recent_imaging
        ]
        grid2.addWidget(_list_card("Imaging", imaging, "No recent imaging"), 0, 0)
        letter = card(padding=14)
        letter.layout().addWidget(label("Last letter", "h3"))
        excerpt = label(ctx.last_letter_excerpt or "No previous letter on record", wrap=True)
        if ctx.last_letter_source:
            excerpt.setToolTip(f"Source: {ctx.last_letter_source.reference}")
        if not ctx.last_letter_excerpt:
            excerpt.setObjectName("caption")
        letter.layout().addWidget(excerpt)
        grid2.addWidget(letter, 0, 1)
        grid2.setColumnStretch(0, 1)
        grid2.setColumnStretch(1, 1)
        self._lay.addLayout(grid2)
        self._lay.addWidget(label(f"Record read at {local_time(ctx.retrieved_at)}", "caption"))
        self._lay.addStretch(1)
        enable(self.start_button, True, "", "Start the consultation (Ctrl+R)")


def patient_strip(ctx: PatientContext | None, name: str) -> QWidget:
    """A one-line patient identity with allergies, for the top of the consultation/review screens."""
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(12)
    title = label(name, "h2")
    row.addWidget(title)
    if ctx is not None:
        row.addWidget(
            label(
                f"NHS {ctx.demographics.nhs_number or '—'}  ·  born {uk_date(ctx.demographics.date_of_birth)}",
                "caption",
            )
        )
        real = [a for a in ctx.allergies if not no_known_allergy(a.substance)]
        if real:
            chip = QLabel("⚠ ALLERGIES: " + ", ".join(a.substance for a in real))
            chip.setStyleSheet(
                "background: #C0392B; color: white; font-weight: 800; border-radius: 10px; padding: 3px 12px;"
            )
            chip.setAccessibleName("Allergies: " + ", ".join(a.substance for a in real))
        else:
            chip = QLabel("No known allergies")
            chip.setStyleSheet(
                "color: #5A6178; font-weight: 700; border: 1px dashed #5A6178; border-radius: 10px; padding: 2px 10px;"
            )
        row.addWidget(chip)
    row.addStretch(1)
    return w
