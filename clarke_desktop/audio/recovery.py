"""Find and recover recordings interrupted by a crash, a kill or a power cut.

An orphan is a sidecar still marked "recording" whose lock nobody holds. Its raw PCM file holds
every block that reached disk; recovery converts it to the 16 kHz WAV the pipeline expects and
marks the sidecar "recovered". Nothing is deleted until the WAV is safely written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from clarke_desktop.audio.sidecar import TARGET_RATE, is_locked, write_sidecar
from clarke_desktop.files import replace_durably
from clarke_desktop.schemas import utc_now_iso

log = logging.getLogger(__name__)

_CHUNK_FRAMES = 48_000 * 10  # convert in 10 s pieces: memory stays bounded for hour-long audio


@dataclass
class OrphanRecording:
    sidecar_path: Path
    raw_path: Path
    recording_id: str
    consultation_id: str | None
    samplerate: int
    started_at: str | None

    @property
    def duration_s(self) -> float:
        size = self.raw_path.stat().st_size if self.raw_path.exists() else 0
        return (size // 2) / self.samplerate


def convert_raw_to_wav(raw_path: Path, samplerate: int, wav_path: Path) -> Path:
    """s16le mono at `samplerate` -> 16 kHz mono 16-bit WAV, written atomically."""
    tmp = wav_path.with_suffix(".wav.tmp")
    resampler = soxr.ResampleStream(samplerate, TARGET_RATE, 1, dtype="float32")
    with (
        open(raw_path, "rb") as src,
        sf.SoundFile(tmp, "w", samplerate=TARGET_RATE, channels=1, subtype="PCM_16", format="WAV") as dst,
    ):
        while True:
            data = src.read(_CHUNK_FRAMES * 2)
            usable = len(data) - len(data) % 2  # a torn final sample from a crash is dropped
            block = np.frombuffer(data[:usable], dtype=np.int16).astype(np.float32) / 32768.0
            last = len(data) < _CHUNK_FRAMES * 2
            out = resampler.resample_chunk(block, last=last)
            if out.size:
                dst.write(np.clip(out, -1.0, 1.0))
            if last:
                break
    replace_durably(tmp, wav_path)
    return wav_path


def find_orphans(recordings_dir: Path) -> list[OrphanRecording]:
    orphans = []
    for sidecar in sorted(Path(recordings_dir).glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable recording sidecar %s: %s", sidecar, exc)
            continue
        if meta.get("state") != "recording" or is_locked(sidecar):
            continue
        orphans.append(
            OrphanRecording(
                sidecar_path=sidecar,
                raw_path=sidecar.parent / meta["raw_file"],
                recording_id=meta["recording_id"],
                consultation_id=meta.get("consultation_id"),
                samplerate=int(meta["samplerate"]),
                started_at=meta.get("started_at"),
            )
        )
    return orphans


def recover(orphan: OrphanRecording) -> Path:
    """Convert the orphan's audio to WAV and mark it recovered; returns the WAV path."""
    meta = json.loads(orphan.sidecar_path.read_text(encoding="utf-8"))
    if not orphan.raw_path.exists() or orphan.raw_path.stat().st_size < 2:
        write_sidecar(orphan.sidecar_path, {**meta, "state": "empty", "recovered_at": utc_now_iso()})
        raise ValueError(f"Recording {orphan.recording_id} has no audio on disk; nothing to recover.")
    duration = orphan.duration_s
    wav = convert_raw_to_wav(orphan.raw_path, orphan.samplerate, orphan.raw_path.with_suffix(".wav"))
    write_sidecar(
        orphan.sidecar_path,
        {
            **meta,
            "state": "recovered",
            "recovered_at": utc_now_iso(),
            "wav_file": wav.name,
            "duration_s": duration,
        },
    )
    orphan.raw_path.unlink()
    orphan.sidecar_path.with_suffix(".lock").unlink(missing_ok=True)
    log.info("recovered recording %s (%.1f s)", orphan.recording_id, duration)
    return wav
