"""Audio files in: WAV, FLAC, OGG and MP3 at any rate and channel count -> 16 kHz mono float32.

Errors name the file and the problem (empty, too short, corrupted, not audio), so the clinician
or IT can act on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from clarke_desktop.asr.base import SAMPLE_RATE, AudioError

SUPPORTED = ("WAV", "FLAC", "OGG", "MP3")
# One CTC frame of MedASR needs 2320 samples (0.145 s); shorter recordings cannot be transcribed.
MIN_SECONDS = 0.145


def _describe(path: Path) -> str:
    return f"'{path}'"


def load_audio(path: Path | str, *, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Read `path` and return 16 kHz mono float32 samples in [-1, 1]; AudioError on any problem."""
    path = Path(path)
    name = _describe(path)
    if not path.exists():
        raise AudioError(f"Audio file {name} does not exist")
    if path.is_dir():
        raise AudioError(f"{name} is a folder, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"Cannot read audio file {name}: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(f"Audio file {name} is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        raise AudioError(
            f"{name} is not a readable audio file ({exc.error_string.strip()}); "
            f"supported formats: {', '.join(SUPPORTED)}"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"Cannot read audio file {name}: {exc}") from exc
    if info.format not in SUPPORTED:
        raise AudioError(f"{name} is {info.format} audio; supported formats: {', '.join(SUPPORTED)}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(f"Audio file {name} is corrupted or truncated ({detail.strip()})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"Audio file {name} holds no samples")
    if info.frames > 0 and data.shape[0] < info.frames * 0.5:
        # libsndfile reads what it can from a truncated file; losing half of it is not a recording.
        raise AudioError(
            f"Audio file {name} is truncated: {data.shape[0]} of {info.frames} samples could be read"
        )
    if not np.isfinite(data).all():
        raise AudioError(f"Audio file {name} is corrupted (non-finite samples)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    mono = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    seconds = mono.size / SAMPLE_RATE
    if seconds < min_seconds:
        raise AudioError(
            f"Audio file {name} is too short ({seconds:.3f} s); at least {min_seconds:.3f} s is needed"
        )
    return np.ascontiguousarray(mono)
