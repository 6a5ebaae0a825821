"""Audio files in: WAV, FLAC, OGG and MP3 at any rate and channel count -> 16 kHz mono float32.

Errors name the file and the problem (empty, too short, corrupted, not audio), so the clinician
or IT can act on them. A sealed (encrypted) recording is decrypted in memory, never to disk.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import soundfile as sf
import soxr

from clarke_desktop.errors import ClarkeError

if TYPE_CHECKING:
    from clarke_desktop.audio.sealing import SealedFiles

SAMPLE_RATE = 16_000  # what speech recognition reads (MedASR)


class AudioError(ClarkeError):
    """Empty, too short, corrupted or non-audio input; the message names the file and is safe to show."""


class EncryptedAudio(AudioError):
    """A sealed recording, and nothing to open it with (no sign-in in this process)."""


SUPPORTED = ("WAV", "FLAC", "OGG", "MP3")
# One CTC frame of MedASR needs 2320 samples (0.145 s); shorter recordings cannot be transcribed.
MIN_SECONDS = 0.145
# The longest recording read (3 hours, ~690 MB as float32 at 16 kHz; the longest clinic consultation
# is well under it): checked from the header before any sample is decoded, since a small compressed
# file can claim far more (a decompression bomb).
MAX_SECONDS = 3 * 3600
_BLOCK_FRAMES = 1 << 18  # ~5 s at 48 kHz


class _AudioInfo(Protocol):
    """What `_read_mono_16k` reads of soundfile's (untyped) `sf.info()` result."""

    @property
    def samplerate(self) -> int: ...


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes" if seconds >= 60 else f"{seconds:.0f} seconds"


def _describe(path: Path) -> str:
    return f"'{path}'"


Source = str | io.BytesIO  # a file name, or a decrypted recording in memory


def _read_mono_16k(source: Source, info: _AudioInfo) -> tuple[np.ndarray, int]:
    """Block by block, so an hour at 48 kHz stereo never sits in memory at its original rate."""
    parts: list[np.ndarray] = []
    read = 0
    resampler = (
        None
        if info.samplerate == SAMPLE_RATE
        else soxr.ResampleStream(info.samplerate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    )
    with sf.SoundFile(source) as fh:
        for block in fh.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            read += block.shape[0]
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].copy()
            parts.append(resampler.resample_chunk(mono) if resampler else mono)
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    out = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return out.astype(np.float32, copy=False), read


def load_audio(
    path: Path | str, *, min_seconds: float = MIN_SECONDS, files: SealedFiles | None = None
) -> np.ndarray:
    """Read `path` and return 16 kHz mono float32 samples in [-1, 1]; AudioError on any problem.
    `files` opens a sealed recording (decrypted in memory); without it only plaintext files open."""
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
    source = _source(path, files)
    try:
        info = sf.info(_rewound(source))
    except sf.LibsndfileError as exc:
        raise AudioError(
            f"{name} is not a readable audio file ({exc.error_string.strip()}); "
            f"supported formats: {', '.join(SUPPORTED)}"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"Cannot read audio file {name}: {exc}") from exc
    if info.format not in SUPPORTED:
        raise AudioError(f"{name} is {info.format} audio; supported formats: {', '.join(SUPPORTED)}")
    if info.samplerate > 0 and info.frames / info.samplerate > MAX_SECONDS:
        raise AudioError(
            f"{name} claims {_duration(info.frames / info.samplerate)} of audio; at most "
            f"{_duration(MAX_SECONDS)} is read. Split the recording, or check that it is the right file."
        )
    try:
        mono, read = _read_mono_16k(_rewound(source), info)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(f"Audio file {name} is corrupted or truncated ({detail.strip()})") from exc
    if read == 0:
        raise AudioError(f"Audio file {name} holds no samples")
    if info.frames > 0 and read < info.frames * 0.5:
        # libsndfile reads what it can from a truncated file; losing half of it is not a recording.
        raise AudioError(f"Audio file {name} is truncated: {read} of {info.frames} samples could be read")
    if not np.isfinite(mono).all():
        raise AudioError(f"Audio file {name} is corrupted (non-finite samples)")
    mono = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    seconds = mono.size / SAMPLE_RATE
    if seconds < min_seconds:
        raise AudioError(
            f"Audio file {name} is too short ({seconds:.3f} s); at least {min_seconds:.3f} s is needed"
        )
    return np.ascontiguousarray(mono)


def _source(path: Path, files: SealedFiles | None) -> Source:
    """The file to read: its name, or for a sealed recording its plaintext in memory."""
    if files is None or not files.is_sealed(path):
        return str(path)
    try:
        return io.BytesIO(files.read(path))
    except ClarkeError as exc:
        raise EncryptedAudio(f"Cannot open the recording {_describe(path)}: {exc.user_text}") from exc
    except OSError as exc:
        raise AudioError(f"Cannot read audio file {_describe(path)}: {exc.strerror or exc}") from exc


def _rewound(source: Source) -> Source:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return source
