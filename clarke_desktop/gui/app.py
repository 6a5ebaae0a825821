"""Start the Clarke Desktop window: `run_gui(argv) -> exit code` (what `clarke-desktop` runs)."""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from clarke_desktop import paths
from clarke_desktop.gui.widgets import DisabledExplainer, WheelGuard

log = logging.getLogger(__name__)

STYLESHEET = "styles/clarke.qss"
_crash_file = None


def load_stylesheet() -> str:
    path = paths.resources_dir() / STYLESHEET
    icons = (paths.resources_dir() / "icons").as_posix()
    try:
        return path.read_text(encoding="utf-8").replace("@ICONS@", icons)
    except OSError as exc:  # the app still works unstyled; say so in the log
        log.warning("stylesheet %s not loaded: %s", path, exc)
        return ""


def _qt_messages(mode: QtMsgType, _context: object, message: str) -> None:
    level = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
    }.get(mode, logging.ERROR)
    logging.getLogger("clarke_desktop.gui.qt").log(level, "%s", message)


def _install_crash_log() -> Path:
    """faulthandler writes native crashes to a file; a clean exit deletes it."""
    global _crash_file
    path = paths.logs_dir() / "crash.log"
    if path.exists() and path.stat().st_size:
        log.warning("the previous session crashed; see %s", path.with_suffix(".previous.log"))
        path.replace(path.with_suffix(".previous.log"))
    _crash_file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for faulthandler)
    faulthandler.enable(_crash_file)
    return path


def make_application(argv: list[str]) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "clarke-desktop", *argv])
    app.setApplicationName("Clarke Desktop")
    app.setOrganizationName("Clarke")
    app.setStyle("Fusion")  # same look on Windows and Linux; the QSS builds on it
    font = QFont()
    font.setFamilies(["Inter", "Segoe UI", "DejaVu Sans"])
    font.setPointSizeF(11)
    app.setFont(font)
    app.setStyleSheet(load_stylesheet())
    if not app.findChildren(WheelGuard):
        app.installEventFilter(WheelGuard(app))  # no value changes under a scrolling mouse
    if not app.findChildren(DisabledExplainer):
        app.installEventFilter(DisabledExplainer(app))  # a click on a disabled button says why
    return app


def build_window(backend: object | None = None):  # -> MainWindow, imported lazily
    from clarke_desktop.gui.main_window import MainWindow
    from clarke_desktop.gui.tasks import TaskRunner

    if backend is None:
        from clarke_desktop.session.service import ConsultationService

        backend = ConsultationService()
    runner = TaskRunner()
    window = MainWindow(backend, runner)  # type: ignore[arg-type]
    return window


def _parse(argv: list[str]) -> tuple[list[str], int | None]:
    """`--quit-after MS` (smoke tests: start, show, quit); everything else goes to Qt."""
    rest, quit_after = [], None
    it = iter(argv)
    for arg in it:
        if arg == "--quit-after":
            quit_after = int(next(it))
        else:
            rest.append(arg)
    return rest, quit_after


def _log_to_file() -> None:
    """Every clarke_desktop.* and local_fhir.* message to logs/clarke-desktop.log (rotated), with
    exception text withheld (it may quote patient data)."""
    from clarke_desktop.logs import log_to_file

    log_to_file(paths.logs_dir() / "clarke-desktop.log")


def _install_excepthook(window_ref: list) -> None:
    """An unexpected error in a GUI callback: save the clinician's edits, say so, keep running."""
    previous = sys.excepthook

    def hook(kind, exc, tb) -> None:  # type: ignore[no-untyped-def]
        log.error("unhandled error", exc_info=(kind, exc, tb))
        window = window_ref[0] if window_ref else None
        if window is not None:
            try:
                window.review.flush_edits()
                QMessageBox.warning(
                    window,
                    "Something went wrong",
                    f"An unexpected error occurred ({kind.__name__}). Your edits are saved. "
                    f"Details are in {paths.logs_dir()}.",
                )
            except Exception:
                previous(kind, exc, tb)
        else:
            previous(kind, exc, tb)

    sys.excepthook = hook


def run_gui(argv: list[str]) -> int:
    argv, quit_after = _parse(argv)
    _log_to_file()
    qInstallMessageHandler(_qt_messages)
    crash_path = _install_crash_log()
    app = make_application(argv)
    window_ref: list = []
    _install_excepthook(window_ref)
    from clarke_desktop.gui.screens.signin import start_session
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    identity: Identity | None = None
    try:
        identity = Identity()
        signed_in = start_session(identity)  # nothing of the data opens without a sign-in
        if signed_in is None:
            identity.close()
            return 0
        window = build_window(ConsultationService(signed_in=signed_in, identity=identity))
        window_ref.append(window)
    except Exception as exc:  # show why we cannot start instead of a silent exit
        log.exception("could not start")
        QMessageBox.critical(None, "Clarke Desktop could not start", f"{exc}\n\nLogs: {paths.logs_dir()}")
        return 1
    screen = app.primaryScreen()
    if screen is not None and screen.availableGeometry().width() <= 1440:
        window.setGeometry(screen.availableGeometry())  # also without a window manager (Xvfb, kiosk)
        window.showMaximized()
    else:
        window.resize(1366, 860)
        window.show()
    window.flow.offer_recovery()  # after a crash: drafts, recordings and write-backs to recover
    if quit_after is not None:

        def report_and_quit() -> None:
            g = window.geometry()
            print(
                f"platform={QGuiApplication.platformName()} visible={window.isVisible()} "
                f"exposed={window.windowHandle() is not None and window.windowHandle().isExposed()} "
                f"size={g.width()}x{g.height()} dpr={window.devicePixelRatioF():.2f}",
                flush=True,
            )
            app.quit()

        QTimer.singleShot(quit_after, report_and_quit)
    code = app.exec()
    window.runner.shutdown()
    window.backend.close()
    identity.close()
    if _crash_file is not None:
        _crash_file.close()
        faulthandler.disable()
        os.remove(crash_path)  # clean exit: no crash to report next time
    return int(code)
