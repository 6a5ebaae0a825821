"""Screenshots of every screen, from the real app in a real X window (Xvfb, xcb platform).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--size 1366x768]

Starts Xvfb itself when there is no DISPLAY, uses a throw-away data directory, drives the real
core (bundled FHIR store, embedded demo model) through one consultation for pt-001, and saves one
PNG per screen. Writing the letter with the embedded model on a CPU takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLINICIAN_PASSWORD = "screenshot clinician passphrase"  # a throw-away installation's
sys.path.insert(0, str(REPO))


def start_xvfb(size: str) -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("Xvfb is not installed (Debian package xvfb)")
    for n in range(90, 110):
        if not Path(f"/tmp/.X{n}-lock").exists():
            proc = subprocess.Popen(
                ["Xvfb", f":{n}", "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.environ["DISPLAY"] = f":{n}"
            time.sleep(1.0)
            return proc
    sys.exit("no free X display number")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--size", default="1366x768")
    ap.add_argument("--patient", default="pt-001")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed for each model step")
    ap.add_argument("--no-assistant", action="store_true", help="skip the chart assistant (slow on a CPU)")
    ap.add_argument("--static-only", action="store_true", help="only the screens that need no model run")
    ap.add_argument("--doc-type", default="clinic", choices=["clinic", "soap", "referral", "patient"])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Background jobs start with SIGINT ignored; make INT and TERM unwind (and stop our Xvfb).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    xvfb = start_xvfb(args.size)
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    tmp = Path(tempfile.mkdtemp(prefix="clarke-shots-"))
    os.environ.setdefault("CLARKE_DATA_DIR", str(tmp / "data"))
    os.environ.setdefault("CLARKE_CACHE_DIR", str(Path.home() / ".cache" / "clarke-shots"))
    try:
        return drive(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def drive(args: argparse.Namespace) -> int:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from clarke_desktop.gui.app import build_window, make_application

    app = make_application([])
    assert QGuiApplication.platformName() == "xcb", QGuiApplication.platformName()
    w, h = (int(x) for x in args.size.split("x"))
    from clarke_desktop.gui.screens.signin import SignInDialog
    from clarke_desktop.session.identity import Identity
    from clarke_desktop.session.service import ConsultationService

    # A set-up installation (its data encrypted), the demo clinician signed in as in the clinic.
    identity = Identity()
    if identity.needs_setup():
        done = identity.set_up("it.admin", "IT Administrator", "screenshot admin passphrase")
        identity.add(done.admin, "s.chen", "Dr Sarah Chen", "clinician", CLINICIAN_PASSWORD,
                     registration="GMC 7012345")  # fmt: skip
    sign_in = SignInDialog(None, identity.sign_in)
    sign_in.name.setText("s.chen")
    sign_in.password.setText(CLINICIAN_PASSWORD)
    sign_in.show()
    for _ in range(40):
        app.processEvents()
        time.sleep(0.01)
    sign_in.screen().grabWindow(sign_in.winId()).save(str(args.out / "00-sign-in.png"))
    sign_in._try()
    assert sign_in.unlocked is not None
    window = build_window(ConsultationService(signed_in=sign_in.unlocked, identity=identity))
    window.setGeometry(0, 0, w, h)
    window.show()
    shots: list[str] = []

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        pump(0.4)
        screen = window.screen()
        pix = screen.grabWindow(window.winId())  # what X shows, not a widget re-render
        path = args.out / f"{name}.png"
        pix.save(str(path))
        shots.append(path.name)
        print(f"saved {path}", flush=True)

    wait(lambda: args.patient in window.dashboard.rows, 900, "the clinic list")
    shot("01-dashboard")
    window.flow.open_patient(args.patient)
    wait(lambda: window.patient_screen.context is not None, 120, "the patient record")
    shot("02-patient-context")
    window.navigate("settings")
    wait(lambda: bool(window.settings_screen.name.text()), 60, "settings")
    shot("10-settings")
    window.navigate("diagnostics")
    wait(lambda: window.diagnostics.refresh_button.isEnabled(), 180, "diagnostics")
    shot("11-diagnostics")
    window.flow.open_patient(args.patient)
    window.flow.begin_consultation()
    pid = args.patient
    path = window.backend.demo_transcript_path(pid)
    if path is not None:
        window.consultation.transcript.setPlainText(Path(path).read_text(encoding="utf-8"))
    else:
        window.consultation.transcript.setPlainText(
            "Doctor: How have things been since we last met? Patient: My sugars have been higher."
        )
    window.consultation.aside.setPlainText("BP 142/88. Feet: monofilament intact. Review in 3 months.")
    window.consultation.doc_type.setCurrentIndex(window.consultation.doc_type.findData(args.doc_type))
    shot("03-consultation")
    if args.static_only:
        window.runner.shutdown()
        window.backend.close()
        print("screens:", ", ".join(shots))
        return 0
    window.flow.generate()
    wait(
        lambda: window.processing.rows and any(r.bar.value() > 0 for r in window.processing.rows.values()),
        120,
        "pipeline progress",
    )
    window.show_page("processing")
    shot("04-processing")
    # Sections written together are all shown at once, empty until the prompt is read: wait for words.
    wait(
        lambda: any(c.streaming and c.editor.toPlainText() for c in window.review.cards.values()),
        args.timeout,
        "the first streamed words",
    )
    pump(1)
    window.show_page("review")
    shot("05-review-streaming")
    wait(
        lambda: window.review.document is not None or window.processing.retry_button.isVisible(),
        args.timeout,
        "the letter",
    )
    if window.review.document is None:
        shot("05-processing-failed")
        return 1
    window.show_page("review")
    shot("06-review")
    window.navigate("dashboard")  # the draft is listed as unfinished until it is signed
    wait(lambda: args.patient in window.dashboard.unfinished_buttons, 60, "the unfinished list")
    shot("01b-dashboard-unfinished")
    window.navigate("letter")
    # One discrepancy resolved the way that changes the letter, marked where it changed.
    first = next(iter(window.review.items.values()), None)
    if first is not None:
        (first.record_button or first.keep_button).click()
        wait(lambda: first.d.resolution is not None, 60, "the first resolution")
        window.review.tabs.setCurrentIndex(0)
        shot("06b-review-discrepancy-resolved")
    if window.review.document.fact_check:
        facts = window.review.document.fact_check
        unsupported = next((i for i, f in enumerate(facts) if not f.supported), 0)
        window.review.facts.setCurrentRow(unsupported)  # the interesting case: not found anywhere
        shot("07-review-fact-source")
    for item in list(window.review.items.values()):
        if item.d.resolution is not None:
            continue
        item.reason.setText("Checked with the patient")
        if item.why is not None:  # a red conflict needs a specific reason
            item.why.setCurrentIndex(1)
        item.dismiss_button.click()
    for card in window.review.cards.values():  # the clinician writes what the demo model did not
        if not card.editor.isReadOnly() and not card.text().strip():
            card.editor.setPlainText(
                "Written by the clinician: the demo model's text for this section was refused."
            )
    window.review.flush_edits()
    wait(lambda: window.review.sign_button.isEnabled(), 60, "sign-off to be allowed")
    window.review.tabs.setCurrentIndex(0)
    shot("08-review-ready-to-sign")
    from clarke_desktop.gui.screens.signoff import SignOffDialog

    def confirm(parent, preview, pages, total, ask_password=False) -> str:  # the real dialog, photographed
        dialog = SignOffDialog(parent, preview, pages, total, ask_password=ask_password)
        dialog.show()
        if dialog.password is not None:
            dialog.password.setText(CLINICIAN_PASSWORD)
        pump(0.8)
        path = args.out / "08b-sign-off-preview.png"
        dialog.screen().grabWindow(dialog.winId()).save(str(path))
        shots.append(path.name)
        print(f"saved {path}", flush=True)
        dialog.accept()
        return CLINICIAN_PASSWORD if ask_password else ""

    SignOffDialog.confirm = classmethod(lambda cls, *a, **k: confirm(*a, **k))  # type: ignore[method-assign,assignment]
    window.flow.sign_off()
    wait(lambda: window.current_page() == "signed", 120, "sign-off")
    wait(
        lambda: window.signed._pages.count() and "Rendering" not in _first_text(window.signed._pages),
        60,
        "the PDF preview",
    )
    shot("09-signed-off")
    window.flow.open_patient(args.patient)
    wait(lambda: window.patient_screen.context is not None, 120, "the patient record")
    window.lock("Locked after a time without use.")  # what an unattended workstation shows
    shot("13-locked")
    window._lock_screen.password.setText(CLINICIAN_PASSWORD)
    window._lock_screen.unlock_button.click()
    wait(lambda: not window.is_locked(), 60, "the unlock")
    if args.no_assistant:
        window.runner.shutdown()
        window.backend.close()
        print("screens:", ", ".join(shots))
        return 0
    window.navigate("dashboard")
    window.flow.open_patient(args.patient)
    window.assistant_dock.show()
    window.assistant.question.setText("What was the most recent HbA1c and how has it changed?")
    window.assistant._ask()
    try:
        wait(lambda: window.assistant.ask_button.isEnabled(), args.timeout, "the chart assistant")
    finally:
        shot("12-chart-assistant")
    window.assistant_dock.hide()
    window.runner.shutdown()
    window.backend.close()
    QApplication.processEvents()
    print("screens:", ", ".join(shots))
    return 0


def _first_text(layout) -> str:
    item = layout.itemAt(0)
    w = item.widget() if item else None
    return w.text() if w is not None and hasattr(w, "text") else ""


if __name__ == "__main__":
    raise SystemExit(main())
