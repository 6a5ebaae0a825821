"""Transcript spans with audio times: the words (from ASR) that overlap a stretch of text."""

from __future__ import annotations

from clarke_desktop.schemas import Transcript, TranscriptSpan


def word_char_offsets(transcript: Transcript) -> list[tuple[int, int]]:
    """Char offsets of each Transcript.words entry within Transcript.text (-1 where not found)."""
    offsets: list[tuple[int, int]] = []
    cursor = 0
    lowered = transcript.text.lower()
    for word in transcript.words:
        needle = word.text.strip().lower()
        at = lowered.find(needle, cursor) if needle else -1
        if at < 0:
            offsets.append((-1, -1))
            continue
        offsets.append((at, at + len(needle)))
        cursor = at + len(needle)
    return offsets


class SpanMaker:
    """Makes TranscriptSpans for one transcript (word offsets computed once)."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.offsets = word_char_offsets(transcript)

    def __call__(self, start: int, end: int) -> TranscriptSpan:
        words = self.transcript.words
        overlapping = [
            w for w, (s, e) in zip(words, self.offsets, strict=True) if s >= 0 and s < end and e > start
        ]
        return TranscriptSpan(
            text=self.transcript.text[start:end],
            start_s=overlapping[0].start_s if overlapping else None,
            end_s=overlapping[-1].end_s if overlapping else None,
            char_start=start,
            char_end=end,
        )
