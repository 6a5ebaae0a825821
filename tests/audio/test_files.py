"""Audio files in any common format, rate and channel count -> 16 kHz mono float32, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from clarke_desktop.asr.base import AudioError
from clarke_desktop.audio.files import load_audio


def tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    if channels == 1:
        return left.astype(np.float32)
    right = 0.5 * np.sin(2 * np.pi * 440 * t + 0.3)
    return np.stack([left, right] + [left] * (channels - 2), axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_16", 16000, 1),
        ("WAV", "PCM_24", 48000, 2),
        ("WAV", "FLOAT", 44100, 1),
        ("FLAC", "PCM_16", 22050, 2),
        ("OGG", "VORBIS", 48000, 2),
        ("MP3", "MPEG_LAYER_III", 44100, 2),
        ("WAV", "PCM_16", 8000, 6),
    ],
)
def test_formats_rates_and_channels_become_16k_mono(tmp_path, fmt, subtype, rate, channels):
    seconds = 2.0
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, tone(rate, seconds, channels), rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs add a little padding at the start; the length stays within 100 ms.
    assert abs(audio.size - 16000 * seconds) < 1600
    assert np.abs(audio).max() <= 1.0
    # The 440 Hz tone survives resampling and mixing: it dominates the spectrum.
    spectrum = np.abs(np.fft.rfft(audio[2000:18000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2


def test_stereo_is_averaged(tmp_path):
    left = np.full(16000, 0.2, np.float32)
    right = np.full(16000, 0.6, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), 0.4, atol=1e-6)


def test_16k_mono_wav_is_read_unchanged(tmp_path):
    audio = (np.random.default_rng(0).uniform(-0.9, 0.9, 8000)).astype(np.float32)
    sf.write(tmp_path / "x.wav", audio, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "x.wav"), audio)


def _corrupted_wav(path):
    sf.write(path, tone(16000, 2.0, 1), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[8:16] = b"XXXXXXXX"  # destroys the WAVE/fmt chunk ids
    path.write_bytes(bytes(data))


def _truncated_flac(path):
    sf.write(path, tone(16000, 4.0, 1), 16000, format="FLAC")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 5])


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.wav", lambda p: p.write_bytes(b""), "is empty"),
        (
            "letter.wav",
            lambda p: p.write_text("Dear Dr Smith, thank you for seeing..."),
            "not a readable audio file",
        ),
        (
            "random.mp3",
            lambda p: p.write_bytes(np.random.default_rng(1).bytes(5000)),
            "not a readable audio file",
        ),
        ("broken.wav", _corrupted_wav, "not a readable audio file"),
        ("cut.flac", _truncated_flac, "truncated"),
        ("short.wav", lambda p: sf.write(p, np.zeros(1000, np.float32), 16000), "too short"),
        ("nosamples.wav", lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "no samples"),
    ],
)
def test_bad_files_give_an_error_naming_the_file_and_problem(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert message in str(err.value)
    assert name in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)
