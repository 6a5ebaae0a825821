"""Settings (models, GPU/CPU, microphone, clinician and letterhead) and Diagnostics."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from clarke_desktop.gui.widgets import badge, button, clear_layout, enable, label, notice, scroll_page, vbox
from clarke_desktop.session.views import AppSettings, Check, MicStatus, ModelStatus

LLM_BACKENDS = {
    "installed": "Installed MedGemma (falls back to the demo model if missing)",
    "embedded": "Embedded demo model only (not for clinical use)",
    "server": "Local model server (set by IT)",
}

MODEL_STATE_LOOK = {
    "verified": ("Verified ✓", "ok"),
    "installed": ("Installed (not verified)", "info"),
    "unverified": ("Not verified", "warn"),
    "demo": ("Demo model", "demo"),
    "missing": ("Missing", "bad"),
    "failed": ("Verification failed", "bad"),
}


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], name: str) -> QTableWidget:
    t = QTableWidget(len(rows), len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAccessibleName(name)
    t.setWordWrap(True)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            t.setItem(r, c, QTableWidgetItem(text))
    h = t.horizontalHeader()
    h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    h.setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
    t.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # follows the wrap width
    t.setMinimumHeight(
        min(360, t.horizontalHeader().height() + sum(t.rowHeight(i) for i in range(len(rows))) + 8)
    )
    return t


class SettingsScreen(QWidget):
    save = Signal(object)  # AppSettings

    def __init__(self) -> None:
        super().__init__()
        self._settings = AppSettings()
        outer = vbox(self, (0, 0, 0, 0))
        body = QWidget()
        lay = vbox(body, (28, 18, 28, 18), 14)
        lay.addWidget(label("Settings", "h1"))

        self.models_box = QGroupBox("Models")
        self._models = QVBoxLayout(self.models_box)
        lay.addWidget(self.models_box)

        hw = QGroupBox("Models and hardware")
        f = QFormLayout(hw)
        self.llm_backend = QComboBox()
        for key, text in LLM_BACKENDS.items():
            self.llm_backend.addItem(text, key)
        self.llm_backend.setAccessibleName("Letter model")
        self.hardware = label("", wrap=True)
        self.hardware.setAccessibleName("Where the models run")
        self.mic = QComboBox()
        self.mic.setAccessibleName("Microphone")
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("https://llm.hospital.nhs.uk:8443 (set by IT)")
        self.server_url.setAccessibleName("Model server address")
        self.llm_backend.currentIndexChanged.connect(lambda _i: self._show_server_url())
        f.addRow("Letter model", self.llm_backend)
        f.addRow("Server address", self.server_url)
        self._model_form = f
        f.addRow("Runs on", self.hardware)
        f.addRow("Microphone", self.mic)
        lay.addWidget(hw)

        who = QGroupBox("Clinician and letterhead")
        f2 = QFormLayout(who)
        self.name = QLineEdit()
        self.title = QLineEdit()
        self.specialty = QLineEdit()
        self.letterhead = QPlainTextEdit()
        self.letterhead.setMaximumHeight(90)
        for w, n in (
            (self.name, "Clinician name"),
            (self.title, "Title"),
            (self.specialty, "Specialty"),
            (self.letterhead, "Letterhead"),
        ):
            w.setAccessibleName(n)
        f2.addRow("Name", self.name)
        f2.addRow("Title / role", self.title)
        f2.addRow("Specialty", self.specialty)
        f2.addRow("Letterhead", self.letterhead)
        lay.addWidget(who)
        row = QHBoxLayout()
        self.saved = label("", "caption")
        row.addWidget(self.saved)
        row.addStretch(1)
        self.save_button = button("Save settings", "primary")
        self.save_button.clicked.connect(self._save)
        row.addWidget(self.save_button)
        lay.addLayout(row)
        lay.addStretch(1)
        outer.addWidget(scroll_page(body))

    def set_models(self, status: ModelStatus) -> None:
        clear_layout(self._models)
        head = QHBoxLayout()
        tone = {"medgemma": "ok", "demo": "demo", "missing": "bad"}[status.kind]
        head.addWidget(badge(status.label, tone))
        head.addStretch(1)
        self._models.addLayout(head)
        rows = [
            (m.role, m.name, MODEL_STATE_LOOK.get(m.state, (m.state, ""))[0], m.detail) for m in status.models
        ]
        self._models.addWidget(_table(("Role", "Model", "State", "Detail"), rows, "Installed models"))

    def set_values(self, s: AppSettings, mics: MicStatus) -> None:
        self._settings = s
        self.name.setText(s.clinician_name)
        self.title.setText(s.clinician_title)
        self.specialty.setText(s.specialty)
        self.letterhead.setPlainText(s.letterhead)
        self.llm_backend.setCurrentIndex(max(self.llm_backend.findData(s.llm_backend), 0))
        self.server_url.setText(s.server_url)
        # A clinician may leave IT's server for the models here, never choose or change one.
        locked = bool(s.servers_locked)
        server_item = self.llm_backend.model().item(self.llm_backend.findData("server"))  # type: ignore[attr-defined]
        server_item.setEnabled(not locked or s.llm_backend == "server")
        server_item.setToolTip(s.servers_locked)
        self.server_url.setReadOnly(locked)
        self.server_url.setToolTip(s.servers_locked)
        self._show_server_url()
        self.hardware.setText(s.hardware or "—")
        self.mic.clear()
        self.mic.addItem("System default", "")
        for d in mics.devices:
            self.mic.addItem(d.label, f"{d.name}|{d.host_api}")
        if not mics.devices:
            self.mic.addItem(mics.message or "No microphone found", "")
        i = self.mic.findData(s.microphone)
        self.mic.setCurrentIndex(max(i, 0))

    def _save(self) -> None:
        s = AppSettings(
            clinician_name=self.name.text().strip(),
            clinician_title=self.title.text().strip(),
            specialty=self.specialty.text().strip(),
            letterhead=self.letterhead.toPlainText().strip(),
            microphone=self.mic.currentData() or "",
            llm_backend=self.llm_backend.currentData(),
            server_url=self.server_url.text().strip(),
            hardware=self._settings.hardware,
            extra=dict(self._settings.extra),
        )
        self.save.emit(s)

    def _show_server_url(self) -> None:
        self._model_form.setRowVisible(self.server_url, self.llm_backend.currentData() == "server")

    def saved_ok(self, ok: bool, message: str = "") -> None:
        self.saved.setText("Saved ✓" if ok else f"Not saved: {message}")


class DiagnosticsScreen(QWidget):
    refresh = Signal()
    export = Signal()  # write the report for IT (JSON and text)

    def __init__(self) -> None:
        super().__init__()
        lay = vbox(self, (28, 18, 28, 18), 12)
        head = QHBoxLayout()
        head.addWidget(label("Diagnostics", "h1"))
        head.addStretch(1)
        self.refresh_button = button("Run checks again")
        self.refresh_button.clicked.connect(self.refresh)
        head.addWidget(self.refresh_button)
        self.export_button = button("Export for IT…", accessible="Export the diagnostics report for IT")
        self.export_button.setToolTip("Save the checks as JSON and as text, to send to IT")
        self.export_button.clicked.connect(self.export)
        head.addWidget(self.export_button)
        lay.addLayout(head)
        lay.addWidget(
            label(
                "The same checks as `clarke-desktop doctor`. Share this page with IT if something fails.",
                "caption",
            )
        )
        self.summary = QVBoxLayout()
        lay.addLayout(self.summary)
        self._table_holder = QVBoxLayout()
        lay.addLayout(self._table_holder, 1)

    def show_running(self) -> None:
        clear_layout(self.summary)
        self.summary.addWidget(label("Running checks…", "caption"))
        enable(self.refresh_button, False, "Checks are running")

    def set_checks(self, checks: list[Check]) -> None:
        enable(self.refresh_button, True, "", "Run the checks again")
        clear_layout(self.summary)
        clear_layout(self._table_holder)
        failed = [c for c in checks if c.ok is False]
        warned = [c for c in checks if c.ok is None]
        if failed:
            self.summary.addWidget(
                notice(", ".join(c.name for c in failed), "alert", f"{len(failed)} check(s) failed")
            )
        elif warned:
            self.summary.addWidget(
                notice(
                    ", ".join(c.name for c in warned), "warn", f"Clarke works, with {len(warned)} warning(s)"
                )
            )
        else:
            self.summary.addWidget(
                notice("Everything Clarke needs is in place.", "info", "All checks passed")
            )
        rows = [
            ("✓ OK" if c.ok else "✗ FAILED" if c.ok is False else "⚠ Warning", c.name, c.detail)
            for c in checks
        ]
        self._table_holder.addWidget(_table(("Result", "Check", "Detail"), rows, "Diagnostic checks"))

    def set_failed(self, message: str) -> None:
        enable(self.refresh_button, True, "", "Run the checks again")
        clear_layout(self.summary)
        self.summary.addWidget(notice(message, "alert", "Diagnostics could not run"))
