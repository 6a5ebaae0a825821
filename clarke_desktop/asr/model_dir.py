"""The exported MedASR model directory: file names, metadata and vocabulary.

<model dir>/
    model.fp32.onnx | model.fp16.onnx | model.int8.onnx   (one or more; dynamic time axis)
    vocab.json      {"tokens": [...], "blank_id": 0, "special_ids": [...]}
    metadata.json   source revision, precisions, parity figures, sha256 of every file
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clarke_desktop.asr.base import AsrModelMissing

PRECISIONS = ("fp32", "fp16", "int8")
VOCAB_FILE = "vocab.json"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1

INSTALL_HINT = (
    "IT installs the speech model pack with `clarke-desktop models install PACK`, or exports it from a "
    "local google/medasr snapshot with `clarke-desktop models export-medasr --source SNAPSHOT_DIR "
    "--out MODEL_DIR`. Until then, type or import the transcript."
)


def graph_file(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    return f"model.{precision}.onnx"


@dataclass
class Vocabulary:
    tokens: list[str]
    blank_id: int = 0
    special_ids: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            tokens=list(data["tokens"]),
            blank_id=int(data.get("blank_id", 0)),
            special_ids=frozenset(int(i) for i in data.get("special_ids", ())),
        )

    def save(self, path: Path) -> None:
        data = {"tokens": self.tokens, "blank_id": self.blank_id, "special_ids": sorted(self.special_ids)}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=0), encoding="utf-8")


@dataclass
class ModelDir:
    path: Path
    metadata: dict[str, Any]
    vocabulary: Vocabulary

    @property
    def name(self) -> str:
        return str(self.metadata.get("model_name") or "medasr")

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if (self.path / graph_file(p)).is_file()]

    def graph(self, precision: str) -> Path:
        return self.path / graph_file(precision)


def open_model_dir(path: Path) -> ModelDir:
    """Check that `path` holds an exported MedASR model; raise AsrModelMissing saying what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise AsrModelMissing(f"No speech model at {path} (directory not found). {INSTALL_HINT}")
    missing = [name for name in (VOCAB_FILE, METADATA_FILE) if not (path / name).is_file()]
    if not any((path / graph_file(p)).is_file() for p in PRECISIONS):
        missing.append("model.<fp32|fp16|int8>.onnx")
    if missing:
        raise AsrModelMissing(
            f"The speech model at {path} is incomplete: missing {', '.join(missing)}. {INSTALL_HINT}"
        )
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        vocabulary = Vocabulary.load(path / VOCAB_FILE)
    except (OSError, ValueError, KeyError) as exc:
        raise AsrModelMissing(f"The speech model at {path} is unreadable ({exc}). {INSTALL_HINT}") from exc
    return ModelDir(path=path, metadata=metadata, vocabulary=vocabulary)
