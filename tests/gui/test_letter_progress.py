"""While the letter streams in, the review screen says which section of how many is being written
and how long is left, from the rate measured on this letter (and nothing invented before that)."""

from __future__ import annotations

import pytest

from clarke_desktop.letters.progress import SectionProgress
from clarke_desktop.session.events import SectionDelta

pytestmark = pytest.mark.gui


def test_the_note_names_the_section_and_the_estimate(styled_app) -> None:
    from clarke_desktop.gui.screens.review import ReviewScreen, writing_note

    first = SectionDelta("history", "History", "Mrs", progress=SectionProgress(1, 3, 2, 512, None, None))
    assert writing_note(first) == "Writing “History” (section 1 of 3)"  # no rate yet: no estimate
    later = SectionDelta("plan", "Plan", "Review", progress=SectionProgress(3, 3, 40, 512, 11.6, 84.4))
    assert writing_note(later) == "Writing “Plan” (section 3 of 3) · about 1 min 24 s left · 12 tokens/s"
    assert writing_note(SectionDelta("plan", "Plan", "")) == "Writing “Plan”…"  # a writer that says nothing

    screen = ReviewScreen()
    screen.on_section_event(later)
    assert screen.progress_note.text() == writing_note(later)
    screen.on_section_event(SectionDelta("plan", "Plan", "Review.", done=True))
    assert screen.progress_note.text() == ""
