"""Recording: content, pause, levels, crash safety (SIGKILL) and the real PortAudio path (ALSA)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from paced_stream import PacedTestStream

from clarke_desktop.audio.recorder import Recorder
from clarke_desktop.audio.recovery import find_orphans, recover

RATE = 48_000


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def paced(signal_: np.ndarray):
    return lambda rate, channels, block, cb: PacedTestStream(signal_, rate, block, cb)


def test_recording_is_16k_mono_with_levels_and_live_chunks(tmp_path: Path) -> None:
    levels, chunks = [], []
    rec = Recorder(
        tmp_path,
        stream_factory=paced(tone(1.0)),
        samplerate=RATE,
        on_level=levels.append,
        on_audio=chunks.append,
    )
    rec.start()
    time.sleep(1.3)
    result = rec.stop()
    audio, rate = sf.read(result.wav_path)
    assert rate == 16_000 and audio.ndim == 1
    assert abs(len(audio) / rate - 1.0) < 0.02
    assert abs(dominant_frequency(audio, rate) - 440) < 3
    assert abs(result.duration_s - 1.0) < 0.01
    assert levels and max(lv.peak for lv in levels) == pytest.approx(0.5, abs=0.01)
    live = np.concatenate(chunks)
    assert abs(len(live) - len(audio)) <= 16  # live chunks carry the same audio as the file
    meta = json.loads(result.sidecar_path.read_text())
    assert meta["state"] == "complete" and meta["wav_file"] == result.wav_path.name
    assert not (tmp_path / f"{rec.recording_id}.pcm").exists()
    assert find_orphans(tmp_path) == []


def test_pause_drops_audio_while_paused(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, stream_factory=paced(tone(3.0)), samplerate=RATE)
    rec.start()
    time.sleep(0.5)
    rec.pause()
    time.sleep(1.0)
    rec.resume()
    time.sleep(0.5)
    result = rec.stop()
    assert 0.8 < result.duration_s < 1.3  # about 1 s kept of the ~2 s that elapsed


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {repo!r} + "/tests")
    from clarke_desktop.audio.recorder import Recorder
    from paced_stream import PacedTestStream
    rate = 48000
    t = np.arange(rate * 30) / rate
    sig = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    rec = Recorder({out!r}, consultation_id="cons-kill", samplerate=rate,
                   stream_factory=lambda r, c, b, cb: PacedTestStream(sig, r, b, cb))
    rec.start()
    print("STARTED", flush=True)
    time.sleep(60)
    """
)


def test_sigkill_mid_recording_is_recovered_to_within_half_a_second(tmp_path: Path) -> None:
    repo = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=repo, out=str(tmp_path))], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "STARTED"
    t0 = time.monotonic()
    time.sleep(2.5)
    os.kill(child.pid, signal.SIGKILL)
    killed_after = time.monotonic() - t0
    child.wait()

    orphans = find_orphans(tmp_path)
    assert len(orphans) == 1 and orphans[0].consultation_id == "cons-kill"
    wav = recover(orphans[0])
    audio, rate = sf.read(wav)
    recovered = len(audio) / rate
    assert killed_after - 0.5 <= recovered <= killed_after + 0.2, (recovered, killed_after)
    assert abs(dominant_frequency(audio, rate) - 300) < 3
    assert find_orphans(tmp_path) == []  # marked recovered, not found twice
    assert json.loads(orphans[0].sidecar_path.read_text())["state"] == "recovered"


def test_a_recording_in_progress_is_not_an_orphan(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, stream_factory=paced(tone(2.0)), samplerate=RATE)
    rec.start()
    try:
        time.sleep(0.3)
        assert find_orphans(tmp_path) == []  # its lock is held
    finally:
        rec.stop()


def test_torn_final_sample_is_dropped_not_fatal(tmp_path: Path) -> None:
    raw = tmp_path / "abc.pcm"
    raw.write_bytes(tone(0.5).tobytes() + b"\x01")  # a crash mid-sample
    (tmp_path / "abc.json").write_text(
        json.dumps({"recording_id": "abc", "state": "recording", "samplerate": RATE, "raw_file": "abc.pcm"})
    )
    [orphan] = find_orphans(tmp_path)
    audio, rate = sf.read(recover(orphan))
    assert abs(len(audio) / rate - 0.5) < 0.01


ALSA_CHILD = textwrap.dedent(
    """
    import sys, time, json
    sys.path.insert(0, {repo!r})
    from clarke_desktop.audio.devices import choose_device
    from clarke_desktop.audio.recorder import Recorder
    device = choose_device("default", "ALSA")
    rec = Recorder({out!r}, device=device)
    rec.start()
    deadline = time.monotonic() + 20
    while rec.duration_s < 1.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    result = rec.stop()
    print(json.dumps({{"wav": str(result.wav_path), "rate": rec.samplerate, "device": device.label}}))
    """
)


def test_real_portaudio_capture_through_alsa(tmp_path: Path) -> None:
    """Real sounddevice/PortAudio capture from an ALSA file-backed microphone (no sound card needed)."""
    pytest.importorskip("sounddevice")
    source = tmp_path / "mic.raw"
    source.write_bytes(tone(4.0, freq=660.0).tobytes())
    (tmp_path / ".asoundrc").write_text(
        f'pcm.fakemic {{ type file slave.pcm "null" file "/dev/null" infile "{source}" format "raw" }}\n'
        'pcm.!default { type plug slave { pcm "fakemic" format S16_LE rate 48000 channels 1 } }\n'
    )
    out = tmp_path / "rec"
    repo = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", ALSA_CHILD.format(repo=repo, out=str(out))],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["device"] == "default (ALSA)" and info["rate"] == 48_000
    audio, rate = sf.read(info["wav"])
    assert rate == 16_000 and len(audio) >= 1.5 * rate
    assert abs(dominant_frequency(audio, rate) - 660) < 3
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=0.02)
