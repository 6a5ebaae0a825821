"""What the session reports while it drafts a letter: typed events, one class per kind.

A front end receives them through one callback (`EventSink`) and dispatches on the class
(`match ev: case SectionDelta(): ...`); mypy checks the cases. Stage progress is the pipeline's
own `PipelineProgress`, not a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clarke_desktop.letters.progress import SectionProgress
from clarke_desktop.schemas import PatientContext, PipelineProgress, Transcript

StageProgress = PipelineProgress  # a stage started or moved on (percent and a sentence)


@dataclass(frozen=True)
class TranscriptReady:
    """The transcript the letter is written from (typed, imported, or recognised and corrected)."""

    transcript: Transcript


@dataclass(frozen=True)
class ContextReady:
    """The record context the letter was written from, with the EHR model's flags."""

    context: PatientContext


@dataclass(frozen=True)
class SectionDelta:
    """A section started, grew or finished while the letter streams in."""

    key: str
    heading: str
    text: str  # the full text so far
    done: bool = False
    # Narrative sections: index of count, tokens so far, the measured tokens/s and an estimate of
    # the seconds left for the whole letter (the writer's LetterEvent.progress, passed on as is).
    progress: SectionProgress | None = None


SessionEvent = StageProgress | TranscriptReady | ContextReady | SectionDelta
EventSink = Callable[[SessionEvent], None]


def ignore(_event: SessionEvent) -> None:
    """An EventSink for callers that only want the result."""
