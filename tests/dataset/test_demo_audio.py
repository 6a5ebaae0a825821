"""Demo consultations: text, audio (16 kHz mono 16-bit, 60-90 s), transcripts and planted slips."""

from __future__ import annotations

import json
import re
import shutil
import wave

import pytest
from conftest import DEMO_AUDIO

PRIMARY = ["pt-001", "pt-002", "pt-003"]


@pytest.mark.parametrize("pid", PRIMARY)
def test_wav_format_and_length(pid: str) -> None:
    with wave.open(str(DEMO_AUDIO / f"{pid}_consultation.wav")) as w:
        assert w.getframerate() == 16_000
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        seconds = w.getnframes() / w.getframerate()
    assert 60.0 <= seconds <= 90.0, seconds


@pytest.mark.parametrize("pid", PRIMARY)
def test_dialogue_transcript_and_segments_agree(pid: str) -> None:
    lines = [ln for ln in (DEMO_AUDIO / f"{pid}_consultation.txt").read_text().splitlines() if ln.strip()]
    assert all(re.match(r"^(Doctor|Patient): \S", ln) for ln in lines)
    speakers = {ln.split(":")[0] for ln in lines}
    assert speakers == {"Doctor", "Patient"}
    spoken = [ln.split(": ", 1)[1] for ln in lines]
    transcript = (DEMO_AUDIO / f"{pid}_transcript.txt").read_text().strip()
    assert transcript == " ".join(spoken)
    assert "Doctor:" not in transcript and "Patient:" not in transcript
    segs = json.loads((DEMO_AUDIO / f"{pid}_segments.json").read_text())
    assert [s["text"] for s in segs["segments"]] == spoken
    voices = {s["speaker"]: s["voice"] for s in segs["segments"]}
    assert voices["doctor"] != voices["patient"] and all(v.startswith("en-gb") for v in voices.values())
    ends = [s["end_s"] for s in segs["segments"]]
    assert ends == sorted(ends) and ends[-1] == pytest.approx(segs["duration_s"], abs=0.05)


def _record_text(resource: dict) -> str:
    return json.dumps(resource)


@pytest.mark.parametrize("pid", PRIMARY)
def test_planted_slips_are_in_the_transcript_and_contradict_the_record(pid: str, by_ref) -> None:
    data = json.loads((DEMO_AUDIO / f"{pid}_expected_discrepancies.json").read_text())
    transcript = (DEMO_AUDIO / f"{pid}_transcript.txt").read_text()
    kinds = {d["kind"] for d in data["discrepancies"]}
    assert len(data["discrepancies"]) >= 3 and len(kinds) >= 3
    assert kinds <= {"dose", "frequency", "allergy", "allergy_class", "lab_value", "diagnosis", "unrecorded_medicine",
                     "stopped_medicine"}  # fmt: skip
    for d in data["discrepancies"]:
        assert d["said"] in transcript, d["said"]
        src = d["record_source"]
        resource = by_ref[f"{src['resource_type']}/{src['id']}"]
        assert resource["subject" if "subject" in resource else "patient"]["reference"] == f"Patient/{pid}"
        said_numbers = set(re.findall(r"\d+(?:\.\d+)?", d["said"]))
        if d["kind"] in ("lab_value", "dose") and said_numbers:
            # the number said is not the number recorded
            value = resource.get("valueQuantity", {}).get("value")
            doses = [
                dr["doseQuantity"]["value"]
                for di in resource.get("dosageInstruction", [])
                for dr in di.get("doseAndRate", [])
            ]
            recorded = {str(v) for v in [value, *doses] if v is not None}
            assert recorded and not (said_numbers & recorded), (d["said"], recorded)
    for phrase in data["consistent_with_record"]:
        assert phrase in transcript, phrase


def test_allergy_slips_differ_from_the_record(by_ref) -> None:
    d1 = json.loads((DEMO_AUDIO / "pt-001_expected_discrepancies.json").read_text())["discrepancies"]
    allergy = next(d for d in d1 if d["kind"] == "allergy")
    rec = by_ref[f"AllergyIntolerance/{allergy['record_source']['id']}"]
    assert rec["reaction"][0]["manifestation"][0]["text"] == "Anaphylaxis" and "rash" in allergy["said"]
    d3 = json.loads((DEMO_AUDIO / "pt-003_expected_discrepancies.json").read_text())["discrepancies"]
    allergy = next(d for d in d3 if d["kind"] == "allergy")
    rec = by_ref[f"AllergyIntolerance/{allergy['record_source']['id']}"]
    assert rec["code"]["text"] == "Ibuprofen" and "aspirin" in allergy["said"]


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_render_is_reproducible(tmp_path) -> None:
    """Re-rendering a consultation with the recorded speed gives the committed bytes."""
    import render_demo_audio

    segs = json.loads((DEMO_AUDIO / "pt-002_segments.json").read_text())
    wav, seconds, segments = render_demo_audio.render("pt-002", segs["espeak_speed_wpm"], tmp_path)
    assert wav.read_bytes() == (DEMO_AUDIO / "pt-002_consultation.wav").read_bytes()
    assert seconds == pytest.approx(segs["duration_s"], abs=0.001)


@pytest.mark.parametrize("pid", PRIMARY)
def test_slips_point_at_the_line_and_speaker_that_says_them(pid: str) -> None:
    data = json.loads((DEMO_AUDIO / f"{pid}_expected_discrepancies.json").read_text())
    segs = json.loads((DEMO_AUDIO / f"{pid}_segments.json").read_text())["segments"]
    for d in data["discrepancies"]:
        seg = segs[d["segment"]["index"]]
        assert d["said"] in seg["text"]
        assert seg["speaker"] == d["speaker"]
        assert (d["segment"]["start_s"], d["segment"]["end_s"]) == (seg["start_s"], seg["end_s"])
