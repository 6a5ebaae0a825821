"""Crash-safe consultation recording.

The device is opened at its native rate; blocks go from the PortAudio callback into a queue (no
I/O, locks or Qt in the callback) and a writer thread appends them to a raw int16 PCM file,
fsync'd per block, next to a JSON sidecar written *before* capture starts. After a crash or power
loss the sidecar and the raw file are enough to recover everything up to the last block written
(see `recovery.py`): WAV/FLAC headers would be broken, raw PCM is not.

With a sign-in (`files`, handed down by the session layer) the capture is sealed instead: blocks are
gathered into one authenticated AES-GCM record of at least RECORD_SECONDS (or whatever has arrived
when no more comes for that long, e.g. while paused), appended and fsync'd, so a kill still loses
under half a second; the WAV made at stop is sealed too, and plaintext audio never reaches the disk.

The writer also resamples to 16 kHz mono for live transcription and computes level-meter values.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soxr

from clarke_desktop.audio.devices import InputDevice, MicrophoneUnavailable, choose_device, load_sounddevice
from clarke_desktop.audio.sealing import SEALED_CONTAINER, RecordAppender, SealedFiles
from clarke_desktop.audio.sidecar import SIDECAR_VERSION, TARGET_RATE, RecordingLock, write_sidecar
from clarke_desktop.schemas import utc_now_iso

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
RECORD_SECONDS = 0.25  # sealed capture: the least audio per record (a record costs 32 bytes and an fsync)


class Stream(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


# (samplerate, channels, blocksize, callback) -> stream; the callback has PortAudio's signature.
StreamFactory = Callable[[int, int, int, Callable[..., None]], Stream]


def portaudio_stream_factory(device: InputDevice) -> StreamFactory:
    def make(samplerate: int, channels: int, blocksize: int, callback: Callable[..., None]) -> Stream:
        sd = load_sounddevice()
        try:
            stream: Stream = sd.InputStream(
                device=device.index,
                samplerate=samplerate,
                channels=channels,
                dtype="int16",
                blocksize=blocksize,
                callback=callback,
            )
            return stream
        except Exception as exc:
            raise MicrophoneUnavailable(
                f"The microphone '{device.label}' could not be opened ({exc}). "
                "Check it is connected and not in use by another program, or choose another one."
            ) from exc

    return make


@dataclass
class Level:
    rms_dbfs: float
    peak: float  # 0..1


@dataclass
class RecordingResult:
    recording_id: str
    wav_path: Path
    duration_s: float
    overflows: int
    sidecar_path: Path


def level_of(block: np.ndarray) -> Level:
    samples = block.astype(np.float32) / 32768.0
    rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
    return Level(rms_dbfs=20 * np.log10(max(rms, 1e-9)), peak=float(np.max(np.abs(samples), initial=0.0)))


class Recorder:
    """One recording session: start, pause/resume, stop. Thread-safe for those calls."""

    def __init__(
        self,
        out_dir: Path,
        *,
        consultation_id: str | None = None,
        device: InputDevice | None = None,
        stream_factory: StreamFactory | None = None,
        samplerate: int | None = None,
        on_level: Callable[[Level], None] | None = None,
        on_audio: Callable[[np.ndarray], None] | None = None,
        files: SealedFiles | None = None,
    ) -> None:
        """`files` seals the capture and its WAV when they seal in `out_dir` (a sign-in opened the
        data folder's key); without them, or with no key open, both are plaintext as before."""
        if stream_factory is None:
            device = device or choose_device()
            stream_factory = portaudio_stream_factory(device)
        self.device = device
        self._factory = stream_factory
        self.samplerate = int(samplerate or (device.default_samplerate if device else 48_000))
        self.channels = 1 if device is None else min(device.max_input_channels, 2)
        self.recording_id = uuid.uuid4().hex
        self.consultation_id = consultation_id
        self.out_dir = Path(out_dir)
        self.raw_path = self.out_dir / f"{self.recording_id}.pcm"
        self.sidecar_path = self.out_dir / f"{self.recording_id}.json"
        self.on_level = on_level
        self.on_audio = on_audio
        self.overflows = 0
        self.frames_written = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._paused = threading.Event()
        self._stream: Stream | None = None
        self._writer: threading.Thread | None = None
        self._raw_fh: Any = None
        self._lock: RecordingLock | None = None
        self._writer_error: BaseException | None = None
        self._resampler = soxr.ResampleStream(self.samplerate, TARGET_RATE, 1, dtype="float32")
        self._files = files
        self.sealed = files is not None and files.sealing(self.raw_path)
        self._appender: RecordAppender | None = None
        self._pending: list[np.ndarray] = []  # sealed capture: blocks not yet in a record
        self._pending_frames = 0

    # -- PortAudio callback: queue the block and return, nothing else -------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        if not self._paused.is_set():
            self._queue.put(indata.copy())

    def _sidecar(self, state: str, **extra: Any) -> dict[str, Any]:
        return {
            "version": SIDECAR_VERSION,
            "recording_id": self.recording_id,
            "consultation_id": self.consultation_id,
            "state": state,
            "format": "s16le",
            "samplerate": self.samplerate,
            "channels": 1,
            "raw_file": self.raw_path.name,
            "device": self.device.label if self.device else "test stream",
            "pid": os.getpid(),
            "started_at": utc_now_iso(),
            **({"container": SEALED_CONTAINER} if self.sealed else {}),
            **extra,
        }

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # The sidecar exists before the first sample, so even a crash in the first block is found.
        self._started = self._sidecar("recording")
        write_sidecar(self.sidecar_path, self._started)
        if self.sealed:
            assert self._files is not None
            self._appender = self._files.appender(self.raw_path)
        else:
            self._raw_fh = open(self.raw_path, "ab", buffering=0)
        # Held while recording: recovery treats an unlocked "recording" sidecar as orphaned.
        self._lock = RecordingLock(self.sidecar_path)
        self._lock.acquire()
        self._writer = threading.Thread(target=self._write_loop, name="clarke-audio-writer", daemon=True)
        self._writer.start()
        blocksize = int(self.samplerate * BLOCK_SECONDS)
        self._stream = self._factory(self.samplerate, self.channels, blocksize, self._callback)
        self._stream.start()
        log.info("recording %s started at %d Hz", self.recording_id, self.samplerate)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def duration_s(self) -> float:
        return self.frames_written / self.samplerate

    def _write_loop(self) -> None:
        try:
            while True:
                try:  # sealed: what has arrived is written once no more comes for RECORD_SECONDS
                    block = self._queue.get(timeout=RECORD_SECONDS if self._pending else None)
                except queue.Empty:
                    self._seal_pending()
                    continue
                if block is None:
                    break
                mono = block if block.ndim == 1 else block.mean(axis=1).astype(np.int16)
                mono = np.ascontiguousarray(mono.reshape(-1), dtype=np.int16)
                if self._appender is not None:
                    self._pending.append(mono)
                    self._pending_frames += mono.size
                    if self._pending_frames >= self.samplerate * RECORD_SECONDS:
                        self._seal_pending()
                else:
                    self._raw_fh.write(mono.tobytes())
                    os.fsync(self._raw_fh.fileno())
                    self.frames_written += mono.size
                if self.on_level:
                    self.on_level(level_of(mono))
                if self.on_audio:
                    chunk = self._resampler.resample_chunk(mono.astype(np.float32) / 32768.0)
                    if chunk.size:
                        self.on_audio(chunk)
            self._seal_pending()
        except BaseException as exc:  # surfaced by stop(); the raw file keeps what was written
            log.exception("audio writer failed")
            self._writer_error = exc

    def _seal_pending(self) -> None:
        """One sealed record of the blocks gathered so far, on disk (fsync) when this returns."""
        if not self._pending or self._appender is None:
            return
        self._appender.append(np.concatenate(self._pending).tobytes())
        self.frames_written += self._pending_frames
        self._pending, self._pending_frames = [], 0

    def stop(self) -> RecordingResult:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self._queue.put(None)
        if self._writer is not None:
            self._writer.join()
        if self.on_audio:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                self.on_audio(tail)
        self._close_capture()
        from clarke_desktop.audio.recovery import convert_raw_to_wav

        try:
            wav_path = convert_raw_to_wav(
                self.raw_path, self.samplerate, self.raw_path.with_suffix(".wav"), files=self._files,
                sealed=self.sealed,
            )  # fmt: skip
        except BaseException:
            # The capture stays as it is, an orphan from now on: recovered at the next start (or by
            # `clarke-desktop recover`) once the cause (a full disk) is dealt with.
            if self._lock is not None:
                self._lock.release()
            raise
        write_sidecar(
            self.sidecar_path,
            {
                **self._started,
                "state": "complete",
                "stopped_at": utc_now_iso(),
                "wav_file": wav_path.name,
                "duration_s": self.duration_s,
                "overflows": self.overflows,
            },
        )
        self.raw_path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
        if self._writer_error is not None:
            raise RuntimeError(f"audio was not fully written: {self._writer_error}") from self._writer_error
        return RecordingResult(
            self.recording_id, wav_path, self.duration_s, self.overflows, self.sidecar_path
        )

    def _close_capture(self) -> None:
        if self._appender is None:
            self._raw_fh.close()
            return
        try:
            if self._writer_error is None:
                self._appender.finish()  # the capture is whole: a cut from now on is detected
        except OSError as exc:  # unfinished is still readable; the WAV is made from what is there
            self._writer_error = exc
        finally:
            self._appender.close()
