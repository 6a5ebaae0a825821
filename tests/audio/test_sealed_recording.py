"""Recordings at rest once an installation has accounts: the capture and its WAV are sealed (no
RIFF header, no PCM on disk), read back only in memory with a sign-in; a SIGKILL still loses under
half a second and recovers; a full disk loses nothing already written. Without a key, recordings
are plaintext exactly as before."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import accounts
import numpy as np
import pytest
import soundfile as sf
from paced_stream import PacedTestStream

from clarke_desktop.audio.files import AudioError, EncryptedAudio, load_audio
from clarke_desktop.audio.recorder import Recorder
from clarke_desktop.audio.recovery import find_orphans, recover
from clarke_desktop.identity import keyring, sealed

RATE = 48_000
REPO = Path(__file__).resolve().parents[2]


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def paced(signal_: np.ndarray):
    return lambda rate, channels, block, cb: PacedTestStream(signal_, rate, block, cb)


def decrypted_wav(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(sealed.read_bytes(path)))
    return audio, rate


def pcm_on_disk(raw: bytes, pcm: bytes) -> bool:
    """Whether any 64-byte run of `pcm` (taken every 4 kB) appears in `raw`."""
    return any(pcm[i : i + 64] in raw for i in range(0, len(pcm) - 64, 4096))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    accounts.set_up(folder)  # the set-up opens the data key here, as a sign-in does
    yield folder
    keyring.forget(folder)


def test_an_encrypted_recording_leaves_no_plaintext_audio_on_disk(data: Path) -> None:
    signal_ = tone(1.5)
    rec = Recorder(data / "recordings", stream_factory=paced(signal_), samplerate=RATE, files=sealed.FILES)
    assert rec.sealed
    rec.start()
    time.sleep(0.9)
    raw = rec.raw_path.read_bytes()  # mid-recording: sealed records only
    assert raw.startswith(sealed.MAGIC) and sealed.payload_size(rec.raw_path) > 0
    assert not pcm_on_disk(raw, signal_.tobytes())
    time.sleep(0.9)
    result = rec.stop()

    stored = result.wav_path.read_bytes()
    assert stored.startswith(sealed.MAGIC) and b"RIFF" not in stored and b"WAVE" not in stored
    left = sorted(p.suffix for p in (data / "recordings").iterdir())
    assert not rec.raw_path.exists() and left == [".json", ".wav"]
    meta = json.loads(result.sidecar_path.read_text())
    assert meta["state"] == "complete" and meta["container"] == "clarke-sealed-1"
    audio, rate = decrypted_wav(result.wav_path)
    assert rate == 16_000 and abs(len(audio) / rate - 1.5) < 0.02 and abs(result.duration_s - 1.5) < 0.01
    assert not pcm_on_disk(stored, (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())

    loaded = load_audio(result.wav_path, files=sealed.FILES)  # what the ASR path reads: in memory
    assert abs(len(loaded) / 16_000 - 1.5) < 0.02 and abs(dominant_frequency(loaded, 16_000) - 440) < 3
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(result.wav_path)  # the bytes on disk are not audio
    keyring.forget(data)  # a new process, nobody signed in
    with pytest.raises(EncryptedAudio, match="sign in"):
        load_audio(result.wav_path, files=sealed.FILES)


def test_without_a_key_recordings_stay_plaintext_as_before(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, stream_factory=paced(tone(0.6)), samplerate=RATE, files=sealed.FILES)
    assert not rec.sealed
    rec.start()
    time.sleep(0.8)
    result = rec.stop()
    assert result.wav_path.read_bytes()[:4] == b"RIFF"
    assert "container" not in json.loads(result.sidecar_path.read_text())
    assert abs(len(load_audio(result.wav_path, files=sealed.FILES)) / 16_000 - 0.6) < 0.02


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {repo!r} + "/tests")
    from pathlib import Path
    import accounts
    from clarke_desktop.audio.recorder import Recorder
    from clarke_desktop.identity import sealed
    from paced_stream import PacedTestStream
    accounts.signed_in(Path({data!r}))  # this process's sign-in opens the data folder's key
    rate = 48000
    t = np.arange(rate * 30) / rate
    sig = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    rec = Recorder(Path({data!r}) / "recordings", consultation_id="cons-kill", samplerate=rate,
                   stream_factory=lambda r, c, b, cb: PacedTestStream(sig, r, b, cb), files=sealed.FILES)
    assert rec.sealed
    rec.start()
    print("STARTED", flush=True)
    time.sleep(60)
    """
)


def test_sigkill_mid_encrypted_recording_is_recovered_to_within_half_a_second(data: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), data=str(data))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "STARTED"
    t0 = time.monotonic()
    time.sleep(2.5)
    os.kill(child.pid, signal.SIGKILL)
    killed_after = time.monotonic() - t0
    child.wait()
    recordings = data / "recordings"

    keyring.forget(data)  # nobody signed in: the orphan is found, and left untouched
    [locked] = find_orphans(recordings)
    assert locked.sealed and locked.consultation_id == "cons-kill"
    raw_before = locked.raw_path.read_bytes()
    with pytest.raises(EncryptedAudio, match="sign in"):
        recover(locked)
    assert locked.raw_path.read_bytes() == raw_before and not locked.raw_path.with_suffix(".wav").exists()

    accounts.signed_in(data)
    [orphan] = find_orphans(recordings, files=sealed.FILES)
    assert abs(orphan.duration_s - sealed.payload_size(orphan.raw_path) / 2 / RATE) < 1e-9
    wav = recover(orphan)
    assert wav.read_bytes().startswith(sealed.MAGIC)
    audio, rate = decrypted_wav(wav)
    recovered = len(audio) / rate
    assert killed_after - 0.5 <= recovered <= killed_after + 0.2, (recovered, killed_after)
    assert abs(dominant_frequency(audio, rate) - 300) < 3
    assert find_orphans(recordings, files=sealed.FILES) == []
    assert json.loads(orphan.sidecar_path.read_text())["state"] == "recovered"


DISK_FULL_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {repo!r} + "/tests")
    from pathlib import Path
    import accounts
    from clarke_desktop.audio.recorder import Recorder
    from clarke_desktop.identity import sealed
    from paced_stream import PacedTestStream
    accounts.signed_in(Path({data!r}))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
    rate = 48000
    t = np.arange(rate * 30) / rate
    sig = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    rec = Recorder(Path({data!r}) / "recordings", consultation_id="cons-full", samplerate=rate,
                   stream_factory=lambda r, c, b, cb: PacedTestStream(sig, r, b, cb), files=sealed.FILES)
    rec.start()
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, hard))  # the disk fills while recording
    deadline = time.monotonic() + 30
    while rec._writer_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    saved = rec.frames_written
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))  # still full at stop: no room for the WAV
    try:
        rec.stop()
        outcome = "stopped"
    except OSError as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    print(json.dumps({{"saved_frames": saved, "writer_error": str(rec._writer_error), "stop": outcome}}))
    """
)


@pytest.mark.skipif(os.name != "posix", reason="the full disk is simulated with RLIMIT_FSIZE (POSIX)")
def test_a_full_disk_during_an_encrypted_recording_loses_nothing_already_saved(data: Path) -> None:
    # Room for three records (0.9 s) and part of a fourth: the disk fills in the middle of a write.
    limit = sealed.HEADER_BYTES + 3 * (sealed.RECORD_OVERHEAD + 14_400 * 2) + 5_000
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD.format(repo=str(REPO), data=str(data), limit=limit)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["saved_frames"] > 0 and "File too large" in report["writer_error"]
    assert report["stop"] != "stopped"  # no room for the WAV either: the capture is left to recover

    recordings = data / "recordings"
    [orphan] = find_orphans(recordings, files=sealed.FILES)  # the lock was let go: an orphan now
    raw = orphan.raw_path
    assert raw.stat().st_size <= limit
    assert sealed.payload_size(raw) == report["saved_frames"] * 2  # the torn write was cut back off
    assert [p.name for p in recordings.iterdir() if p.name.endswith(".tmp")] == []  # no half WAV left
    wav = recover(orphan)  # space freed (this process has no limit)
    audio, rate = decrypted_wav(wav)
    assert abs(len(audio) / rate - report["saved_frames"] / RATE) < 0.002  # every saved sample is there
    assert abs(dominant_frequency(audio, rate) - 300) < 3


def test_a_pause_leaves_nothing_waiting_to_be_written(data: Path) -> None:
    """Audio gathered for a record is written once no more comes for RECORD_SECONDS: a kill while
    paused loses nothing."""
    rec = Recorder(data / "recordings", stream_factory=paced(tone(3.0)), samplerate=RATE, files=sealed.FILES)
    rec.start()
    try:
        time.sleep(0.65)
        rec.pause()
        time.sleep(0.6)
        on_disk = sealed.payload_size(rec.raw_path) // 2
        assert on_disk == rec.frames_written and 0.5 <= on_disk / RATE <= 0.9
        assert list(sealed.iter_records(rec.raw_path, sealed.files_key(rec.raw_path), unfinished=True))
    finally:
        rec.stop()
