"""What the clinician reads when a task fails: Clarke's own errors speak for themselves; anything
else is a defect and is never echoed (its text may quote patient data or internals)."""

from __future__ import annotations

import pytest

from clarke_desktop.gui.controller import user_message
from clarke_desktop.llm.base import InvalidModelOutput
from clarke_desktop.pipeline.errors import PipelineError
from clarke_desktop.session.errors import TranscriptNeeded

pytestmark = pytest.mark.gui


def test_clarke_errors_carry_their_own_message() -> None:
    assert user_message(InvalidModelOutput("the model wrote a list instead of writing prose")) == (
        "the model wrote a list instead of writing prose"
    )
    err = PipelineError("letter", "timeout", "Document generation is taking longer than expected.")
    assert user_message(err) == "Document generation is taking longer than expected."
    assert user_message(TranscriptNeeded("Type the transcript.")) == "Type the transcript."


def test_a_foreign_error_is_not_echoed_even_when_its_class_name_sounds_like_ours() -> None:
    class PatientLookupError(Exception):  # not a ClarkeError: a defect, whatever its name
        pass

    for exc in (KeyError("Mrs Khan, NHS 943 476 5829"), PatientLookupError("Mrs Khan, NHS 943 476 5829")):
        text = user_message(exc)
        assert "Khan" not in text and "943" not in text
        assert text.startswith("Something went wrong") and "log" in text
