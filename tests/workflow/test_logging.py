"""One log file for the whole app: ASR, llama.cpp, audio, the pipeline and local_fhir all reach it,
and an exception's text (which may quote patient data) never does."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clarke_desktop.logs import TREES, WITHHELD, log_to_file


@pytest.fixture
def logfile(tmp_path: Path):
    path = tmp_path / "clarke-desktop.log"
    handler = log_to_file(path)
    yield path
    for name in TREES:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def test_every_subsystem_reaches_the_log_file(logfile: Path) -> None:
    import clarke_desktop.asr.session as asr_session
    import clarke_desktop.audio.recorder as recorder
    import clarke_desktop.llm._llama_log as llama_log
    import clarke_desktop.pipeline.run as pipeline_run

    for module in (asr_session, recorder, pipeline_run):
        module.log.warning("hello from %s", module.__name__)
    llama_log.logger.warning("llama.cpp says hello")
    logging.getLogger("local_fhir.store").warning("local_fhir says hello")
    text = logfile.read_text(encoding="utf-8")
    for name in ("clarke_desktop.asr", "clarke_desktop.audio.recorder", "clarke_desktop.pipeline.run",
                 "clarke_desktop.llm.llama_cpp", "local_fhir.store"):  # fmt: skip
        assert f" {name}: " in text, name


def test_exception_text_is_withheld_but_its_type_and_frames_are_kept(logfile: Path) -> None:
    log = logging.getLogger("clarke_desktop.gui.tasks")
    try:
        try:
            raise KeyError("Margaret Thompson")
        except KeyError as inner:
            raise ValueError(
                "could not parse 'metformin 500 mg' for Mrs Thompson, NHS 999 001 0013"
            ) from inner
    except ValueError:
        log.exception("task failed")
    text = logfile.read_text(encoding="utf-8")
    assert "task failed" in text and "builtins.ValueError: " + WITHHELD in text and "(after KeyError" in text
    assert (
        "test_logging.py" in text and "Thompson" not in text and "metformin" not in text and "999" not in text
    )
