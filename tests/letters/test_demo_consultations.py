"""The demo consultations (resources/demo, written with the dataset, not by us) against the demo
records: every planted slip is found with both sources, and nothing else is flagged."""

from __future__ import annotations

import json

import pytest

from clarke_desktop.agent.context import retrieve_context
from clarke_desktop.letters.discrepancies import detect_discrepancies
from clarke_desktop.paths import resources_dir
from clarke_desktop.schemas import Transcript, Word

DEMO = resources_dir() / "demo"
CONSULTATIONS = ("pt-001", "pt-002", "pt-003")


def _transcript_with_segment_times(patient_id: str) -> Transcript:
    """The transcript with word times spread evenly over each spoken segment (espeak gives
    segment times; MedASR gives real word times)."""
    text = (DEMO / f"{patient_id}_transcript.txt").read_text(encoding="utf-8").strip()
    segments = json.loads((DEMO / f"{patient_id}_segments.json").read_text(encoding="utf-8"))["segments"]
    words: list[Word] = []
    for seg in segments:
        parts = seg["text"].split()
        step = (seg["end_s"] - seg["start_s"]) / len(parts)
        for n, part in enumerate(parts):
            words.append(
                Word(text=part, start_s=seg["start_s"] + n * step, end_s=seg["start_s"] + (n + 1) * step)
            )
    return Transcript(text=text, words=words)


@pytest.mark.parametrize("patient_id", CONSULTATIONS)
def test_planted_discrepancies_are_found_and_nothing_else(fhir, patient_id: str) -> None:
    expected = json.loads((DEMO / f"{patient_id}_expected_discrepancies.json").read_text(encoding="utf-8"))
    transcript = _transcript_with_segment_times(patient_id)
    found = detect_discrepancies(transcript, retrieve_context(fhir, patient_id))
    text = transcript.text
    unmatched = list(found)
    for slip in expected["discrepancies"]:
        start = text.index(slip["said"])
        end = start + len(slip["said"])
        match = next(
            (
                d
                for d in unmatched
                if d.kind == slip["kind"] and d.transcript.char_start < end and d.transcript.char_end > start
            ),
            None,
        )
        assert match is not None, (
            f"missed {slip['kind']}: {slip['said']!r}; found {[d.description for d in found]}"
        )
        unmatched.remove(match)
        if (
            match.record_source
            and slip["record_source"]["resource_type"] == match.record_source.resource_type
        ):
            assert match.record_source.id == slip["record_source"]["id"]
        assert match.record_text
        # audio times fall inside the segment where it was said
        seg = slip["segment"]
        assert (
            seg["start_s"] - 0.01 <= match.transcript.start_s <= match.transcript.end_s <= seg["end_s"] + 0.01
        )
    assert unmatched == [], f"flagged beyond the planted slips: {[d.description for d in unmatched]}"
    for phrase in expected["consistent_with_record"] + expected["new_in_consultation"]:
        start = text.index(phrase)
        assert not any(d.transcript.char_start <= start < d.transcript.char_end for d in found), phrase
