"""PriMock57 (../shared/data/primock57, CC BY 4.0): each consultation's dialogue and its clinician's
note, for measuring the safety checks on real clinical language. Development data: never shipped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "primock57"
_INTERVAL = re.compile(r'xmin = ([\d.]+)\s*\n\s*xmax = ([\d.]+)\s*\n\s*text = "((?:[^"]|"")*)"', re.M)
_MARKS = re.compile(r"</?(?:UNSURE|UNIN|INAUDIBLE)/?>", re.I)


@dataclass(frozen=True)
class Consultation:
    id: str  # day1_consultation01
    dialogue: str  # utterances in time order, one a line
    note: str


def _utterances(path: Path) -> list[tuple[float, str]]:
    out = []
    for start, _end, text in _INTERVAL.findall(path.read_text(encoding="utf-8")):
        text = _MARKS.sub("", text.replace('""', '"'))
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            out.append((float(start), text))
    return out


def load(directory: Path = DEFAULT_DIR) -> list[Consultation]:
    found = []
    for note_path in sorted((directory / "notes").glob("day*_consultation*.json")):
        key = note_path.stem
        parts = _utterances(directory / "transcripts" / f"{key}_doctor.TextGrid")
        parts += _utterances(directory / "transcripts" / f"{key}_patient.TextGrid")
        dialogue = "\n".join(text for _start, text in sorted(parts, key=lambda p: p[0]))
        note = json.loads(note_path.read_text(encoding="utf-8"))["note"]
        found.append(Consultation(key, dialogue, note))
    return found
