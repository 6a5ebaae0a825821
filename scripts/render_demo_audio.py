#!/usr/bin/env python3
"""Render the demo consultations (resources/demo/pt-00N_consultation.txt) to 16 kHz mono WAV.

    .venv/bin/python scripts/render_demo_audio.py [pt-001 ...]

Needs Debian `espeak-ng` and `sox`. Each speaker-labelled line is spoken by espeak-ng with a
British English voice (one for the clinician, another for the patient), converted with sox to
16 kHz mono 16-bit PCM, and joined with short pauses. The speaking rate is adjusted until the
whole consultation lasts 60-90 s. Also written, per consultation:
  pt-00N_consultation.wav   the audio
  pt-00N_transcript.txt     what is said, without speaker labels (reference for ASR WER)
  pt-00N_segments.json      each line: speaker, text, start/end seconds, voice
and the time span of each planted slip in pt-00N_expected_discrepancies.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"
RATE = 16_000
PAUSE_S = 0.45  # between turns
MIN_S, MAX_S = 60.0, 90.0
TARGET_S = 75.0

CLINICIAN_VOICE = "en-gb+f3"
PATIENT_VOICES = {"pt-001": "en-gb-x-rp+f4", "pt-002": "en-gb-x-gbclan+m3", "pt-003": "en-gb-x-rp+f2"}

# How a clinician would say what the script writes; only the audio uses these.
SPOKEN = [
    (r"\bHbA1c\b", "H B A 1 C"),
    (r"\beGFR\b", "e G F R"),
    (r"\bGTN\b", "G T N"),
    (r"\bGP\b", "G P"),
    (r"\bMrs\b", "Missus"),
]

LINE = re.compile(r"^(Doctor|Patient):\s*(.+)$")


def parse(path: Path) -> list[tuple[str, str]]:
    turns = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        m = LINE.match(raw.strip())
        if not m:
            raise ValueError(f"{path}:{n}: expected 'Doctor: ...' or 'Patient: ...', got {raw!r}")
        turns.append((m.group(1).lower(), m.group(2).strip()))
    return turns


def spoken(text: str) -> str:
    for pattern, repl in SPOKEN:
        text = re.sub(pattern, repl, text)
    return text


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def render_line(text: str, voice: str, speed: int, out: Path, tmp: Path) -> float:
    raw = tmp / (out.stem + "_raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), spoken(text)], check=True)
    # -D: no dither, so the same text renders to the same bytes; norm -3: no clipping after resampling
    subprocess.run(
        ["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out), "norm", "-3"], check=True
    )
    return wav_seconds(out)


def render(pid: str, speed: int, tmp: Path) -> tuple[Path, float, list[dict]]:
    turns = parse(DEMO / f"{pid}_consultation.txt")
    silence = tmp / "pause.wav"
    subprocess.run(
        ["sox", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(silence), "trim", "0", str(PAUSE_S)],
        check=True,
    )
    parts: list[Path] = []
    segments: list[dict] = []
    t = 0.0
    for i, (speaker, text) in enumerate(turns):
        voice = CLINICIAN_VOICE if speaker == "doctor" else PATIENT_VOICES[pid]
        seg = tmp / f"{pid}_{i:02d}.wav"
        dur = render_line(text, voice, speed, seg, tmp)
        if parts:
            parts.append(silence)
            t += PAUSE_S
        parts.append(seg)
        segments.append(
            {
                "index": i,
                "speaker": speaker,
                "text": text,
                "start_s": round(t, 3),
                "end_s": round(t + dur, 3),
                "voice": voice,
            }
        )
        t += dur
    out = tmp / f"{pid}_consultation.wav"
    subprocess.run(
        ["sox", "-D", *map(str, parts), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True
    )
    return out, wav_seconds(out), segments


def locate_slips(pid: str, segments: list[dict]) -> None:
    """Add to each planted slip the line it is spoken in and that line's time span in the audio."""
    path = DEMO / f"{pid}_expected_discrepancies.json"
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for d in data["discrepancies"]:
        seg = next((s for s in segments if d["said"] in s["text"]), None)
        if seg is None:
            raise ValueError(f"{path.name}: {d['said']!r} is not said in the consultation")
        d["segment"] = {"index": seg["index"], "start_s": seg["start_s"], "end_s": seg["end_s"]}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("patients", nargs="*", default=sorted(PATIENT_VOICES))
    args = ap.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: apt-get install espeak-ng sox)")
    for pid in args.patients:
        speed = 165
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            for _ in range(6):
                wav, seconds, segments = render(pid, speed, tmp)
                if MIN_S + 3 <= seconds <= MAX_S - 3:
                    break
                speed = max(120, min(220, round(speed * seconds / TARGET_S)))
            else:
                sys.exit(
                    f"{pid}: could not fit the consultation into {MIN_S}-{MAX_S} s (last {seconds:.1f} s)"
                )
            shutil.copyfile(wav, DEMO / f"{pid}_consultation.wav")
        (DEMO / f"{pid}_transcript.txt").write_text(
            " ".join(s["text"] for s in segments) + "\n", encoding="utf-8"
        )
        (DEMO / f"{pid}_segments.json").write_text(
            json.dumps(
                {
                    "patient_id": pid,
                    "duration_s": round(seconds, 3),
                    "sample_rate": RATE,
                    "espeak_speed_wpm": speed,
                    "segments": segments,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        locate_slips(pid, segments)
        print(f"{pid}: {seconds:.1f} s at {speed} wpm -> {DEMO / f'{pid}_consultation.wav'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
