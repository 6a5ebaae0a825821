"""Find and recover recordings interrupted by a crash, a kill or a power cut.

An orphan is a sidecar still marked "recording" whose lock nobody holds. Its raw PCM file holds
every block that reached disk; recovery converts it to the 16 kHz WAV the pipeline expects and
marks the sidecar "recovered". Nothing is deleted until the WAV is safely written.

A sealed capture (an installation with accounts) is read record by record, its torn last record
dropped, and its WAV is sealed too; both need the `files` the session layer passes in (with a
sign-in), and without them a sealed orphan is left as it is, untouched, with an error that says so.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from clarke_desktop.audio.files import EncryptedAudio
from clarke_desktop.audio.sealing import SEALED_CONTAINER, SealedFiles
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
    sealed: bool = False
    files: SealedFiles | None = None

    @property
    def duration_s(self) -> float:
        if not self.raw_path.exists():
            return 0.0
        if self.sealed and self.files is not None:
            size = self.files.payload_size(self.raw_path)
        else:  # a sealed file's size without `files` overstates by ~0.1% (its record headers)
            size = self.raw_path.stat().st_size
        return (size // 2) / self.samplerate


def convert_raw_to_wav(
    raw_path: Path, samplerate: int, wav_path: Path, *, files: SealedFiles | None = None, sealed: bool = False
) -> Path:
    """s16le mono at `samplerate` -> 16 kHz mono 16-bit WAV, written atomically. With `files`, a
    sealed capture is read through them and the WAV is sealed when they seal at `wav_path`; a
    capture known to be `sealed` never opens without them (its bytes are not PCM)."""
    sealed = sealed or (files is not None and files.is_sealed(raw_path))
    if sealed and files is None:
        raise EncryptedAudio(f"The recording {raw_path} is encrypted: sign in to Clarke to recover it.")
    chunks = files.stream(raw_path) if sealed and files is not None else _plain_chunks(raw_path)
    in_memory = files is not None and files.sealing(wav_path)  # plaintext never reaches the disk
    tmp = wav_path.with_suffix(".wav.tmp")
    target: io.BytesIO | Path = io.BytesIO() if in_memory else tmp
    resampler = soxr.ResampleStream(samplerate, TARGET_RATE, 1, dtype="float32")
    try:
        with sf.SoundFile(
            target, "w", samplerate=TARGET_RATE, channels=1, subtype="PCM_16", format="WAV"
        ) as dst:
            carry = b""
            for chunk in chunks:
                data = carry + chunk
                usable = len(data) - len(data) % 2  # a torn final sample from a crash is dropped
                carry = data[usable:]
                out = resampler.resample_chunk(
                    np.frombuffer(data[:usable], dtype=np.int16).astype(np.float32) / 32768.0
                )
                if out.size:
                    dst.write(np.clip(out, -1.0, 1.0))
            out = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if out.size:
                dst.write(np.clip(out, -1.0, 1.0))
        if isinstance(target, io.BytesIO):
            assert files is not None
            files.write(wav_path, target.getbuffer())  # no second copy of an hour's WAV
        else:
            replace_durably(tmp, wav_path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return wav_path


def _plain_chunks(raw_path: Path) -> Iterator[bytes]:
    with open(raw_path, "rb") as src:
        while data := src.read(_CHUNK_FRAMES * 2):
            yield data


def find_orphans(recordings_dir: Path, *, files: SealedFiles | None = None) -> list[OrphanRecording]:
    """Interrupted recordings in `recordings_dir`; `files` (a sign-in's) opens the sealed ones."""
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
                sealed=meta.get("container") == SEALED_CONTAINER,
                files=files,
            )
        )
    return orphans


def recover(orphan: OrphanRecording) -> Path:
    """Convert the orphan's audio to WAV and mark it recovered; returns the WAV path. A sealed one
    needs the orphan's `files` (EncryptedAudio, and nothing changed, without them)."""
    meta = json.loads(orphan.sidecar_path.read_text(encoding="utf-8"))
    if orphan.sealed and orphan.files is None:
        raise EncryptedAudio(
            f"Recording {orphan.recording_id} is encrypted: sign in to Clarke to recover it."
        )
    if not orphan.raw_path.exists() or orphan.duration_s * orphan.samplerate < 1:
        write_sidecar(orphan.sidecar_path, {**meta, "state": "empty", "recovered_at": utc_now_iso()})
        raise ValueError(f"Recording {orphan.recording_id} has no audio on disk; nothing to recover.")
    duration = orphan.duration_s
    wav = convert_raw_to_wav(
        orphan.raw_path, orphan.samplerate, orphan.raw_path.with_suffix(".wav"), files=orphan.files,
        sealed=orphan.sealed,
    )  # fmt: skip
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
