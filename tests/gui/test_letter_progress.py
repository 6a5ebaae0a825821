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


def test_sections_written_together_are_said_to_be(styled_app) -> None:
    from clarke_desktop.gui.screens.review import ReviewScreen, writing_note

    together = SectionProgress(2, 3, 30, 512, 36.0, 12.4, together=3)
    ev = SectionDelta("examination", "Examination findings", "BP", progress=together)
    assert writing_note(ev) == "Writing 3 sections together · about 12 s left · 36 tokens/s"
    screen = ReviewScreen()
    for key, heading in (("history", "History"), ("examination", "Examination findings")):
        screen.on_section_event(SectionDelta(key, heading, "", progress=together))
    screen.on_section_event(ev)
    assert list(screen.cards) == ["history", "examination"]  # cards in the letter's order
    assert screen.progress_note.text() == writing_note(ev)
    # A section finished (a facts section, or the shortest narrative) while others are still being
    # written: the note keeps saying so; it goes when the last one is done.
    screen.on_section_event(SectionDelta("medications", "Medications", "Metformin", done=True))
    screen.on_section_event(SectionDelta("history", "History", "Mrs T.", done=True, progress=together))
    assert screen.progress_note.text() == writing_note(ev)
    screen.on_section_event(
        SectionDelta("examination", "Examination findings", "BP.", done=True, progress=together)
    )
    assert screen.progress_note.text() == ""
