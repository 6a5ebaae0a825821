"""A real Clarke window in its own process, driven to a state and then left for the test to kill
with SIGKILL (test_durable_drafts.py). Run: python crashing_app.py STATE, STATE one of
"typed" (a transcript and an aside typed, no letter), "writing" (a letter being written), "edited"
(a letter drafted and one section edited). Prints READY when the state is reached.

The language model is scripted (tests/scripted_engine.py); everything else is the real app."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from pathlib import Path


def _scripted_engine() -> type:
    """tests/scripted_engine.py by path: tests/ on sys.path would make tests/local_fhir shadow the
    real local_fhir package (an editable install is found after plain folders)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "scripted_engine", Path(__file__).parents[1] / "scripted_engine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ScriptedEngine  # type: ignore[no-any-return]


TRANSCRIPT = "Doctor: How have you been? Patient: Tired, and up at night to pass urine."
ASIDE = "Feet: monofilament intact. Review in 3 months."
EDIT = "Reviewed in clinic. EDITED BEFORE THE CRASH."


def main(state: str) -> None:
    import clarke_desktop.pipeline.components as components
    from clarke_desktop.gui.app import build_window, make_application
    from clarke_desktop.store import AppStore

    hold = threading.Event()  # "writing": the model never finishes

    def reply(_turns: object) -> str:
        if state == "writing":
            hold.wait()
        return "Mrs Thompson reports tiredness and nocturia."

    engine = _scripted_engine()(default=reply, demo=True, name="scripted demo")
    real = components.default_components
    components.default_components = lambda s: dataclasses.replace(
        real(s), engine=lambda role, attempt: engine
    )  # type: ignore[assignment]

    app = make_application([])
    w = build_window()
    w.show()

    def wait(condition, seconds: float = 120.0) -> None:
        end = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"timed out in state {state}")
            app.processEvents()
            time.sleep(0.01)

    wait(lambda: "pt-001" in w.dashboard.rows, 600)
    w.flow.open_patient("pt-001")
    wait(lambda: w.flow.consultation_id is not None and w.patient_screen.context is not None)
    w.flow.begin_consultation()
    w.consultation.transcript.setPlainText(TRANSCRIPT)
    w.consultation.aside.setPlainText(ASIDE)
    cid = w.flow.consultation_id
    store = AppStore()

    def saved() -> bool:
        inputs = store.inputs(cid)
        return inputs is not None and inputs.transcript == TRANSCRIPT and inputs.aside == ASIDE

    wait(saved)
    if state == "writing":
        w.flow.generate()
        wait(lambda: store.consultation(cid).status.value == "processing")
    elif state == "edited":
        w.flow.generate()
        wait(lambda: w.review.document is not None and not w.review.busy_reasons)
        key = next(s.key for s in w.review.document.sections if s.kind == "narrative")
        w.review.cards[key].editor.setPlainText(EDIT)
        w.review.flush_edits()
        wait(lambda: any(s.content == EDIT for s in store.latest_letter(cid).document.sections))
    print("READY", cid, flush=True)
    while True:  # until killed
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1])
