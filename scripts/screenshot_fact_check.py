"""A screenshot of the review screen's safety checks on a constructed letter (not model output):
the fact check marked where the facts are, the facts bound to the one under the cursor emphasised
together, and the checklist with a class-allergy conflict, a speech correction and a sound-alike.

    .venv/bin/python scripts/screenshot_fact_check.py [--out docs/screenshots/07-fact-check.png]

Runs a real xcb window under Xvfb (started here when there is no DISPLAY) on the bundled demo record.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from screenshots import start_xvfb  # noqa: E402

HEARD = (
    "Doctor: You're taking metforming 500 milligrams twice a day? Patient: Yes, with meals. "
    "Doctor: And the escitalopram, ten milligrams? Patient: Yes. Doctor: Your HbA1c is 55 now. "
    "For the chest infection we could start amoxicillin 500 milligrams three times a day."
)
HISTORY = "She takes metformin 500 mg twice daily with meals and escitalopram 10 mg. HbA1c 55 mmol/mol."
PLAN = "Start amoxicillin 500 mg three times a day for 5 days. Increase metformin to 1 g twice daily. Review 3 months."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "07-fact-check.png")
    args = parser.parse_args()
    os.environ.setdefault("CLARKE_DATA_DIR", tempfile.mkdtemp(prefix="clarke-shot-"))
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    xvfb = start_xvfb("1366x768")
    try:
        shoot(args.out)  # and the checklist beside it (-checklist.png)
    finally:
        if xvfb is not None:
            xvfb.terminate()


def shoot(out: Path) -> None:

    from clarke_desktop.agent.context import retrieve_context
    from clarke_desktop.asr.correction import correct_transcript, vocabulary_from_context
    from clarke_desktop.demo_data import ensure_database
    from clarke_desktop.fhir.local import LocalFhirClient
    from clarke_desktop.gui.app import make_application
    from clarke_desktop.gui.screens.review import ReviewScreen
    from clarke_desktop.letters.discrepancies import detect_discrepancies
    from clarke_desktop.letters.fact_check import fact_check
    from clarke_desktop.schemas import ClinicalDocument, DocumentSection, Transcript

    app = make_application([])
    fhir = LocalFhirClient(ensure_database())
    ctx = retrieve_context(fhir, "pt-001")
    transcript = correct_transcript(Transcript(text=HEARD, origin="asr"), vocabulary_from_context(ctx))
    doc = ClinicalDocument(
        consultation_id="shot", letter_date="2026-12-07", patient_name=ctx.demographics.name,
        patient_dob=ctx.demographics.date_of_birth,
        sections=[DocumentSection(key="history", heading="History", content=HISTORY, generated_by="clinician"),
                  DocumentSection(key="plan", heading="Plan", content=PLAN, generated_by="clinician")],
    )  # fmt: skip
    doc.fact_check = fact_check(doc, transcript, ctx)
    doc.discrepancies = detect_discrepancies(transcript, ctx)
    screen = ReviewScreen()
    screen.resize(1366, 768)
    screen.start(ctx, ctx.demographics.name, transcript, "clinic")
    screen.set_document(doc)
    screen.show()
    card = screen.cards["plan"]
    cursor = card.editor.textCursor()
    cursor.setPosition(PLAN.index("1 g") + 1)
    card.editor.setTextCursor(cursor)
    card.editor.setFocus()
    for _ in range(20):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    screen.tabs.setCurrentIndex(1)  # the fact check, with the cursor's fact and its source
    for _ in range(10):
        app.processEvents()
    screen.grab().save(str(out))
    checklist = out.with_name(out.stem + "-checklist.png")
    screen.tabs.setCurrentIndex(0)
    for _ in range(10):
        app.processEvents()
    screen.grab().save(str(checklist))
    print(out, checklist)
    fhir.close()


if __name__ == "__main__":
    main()
