"""Microphones, as PortAudio sees them. Imported lazily: no PortAudio or no device is a normal state.

Devices are chosen by name + host API (indices change when a headset is plugged in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

from clarke_desktop.errors import ClarkeError

log = logging.getLogger(__name__)


class MicrophoneUnavailable(ClarkeError):
    """No usable input device; the message says why and what to do."""


@dataclass(frozen=True)
class InputDevice:
    name: str
    hostapi: str
    index: int
    default_samplerate: float
    max_input_channels: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.hostapi})"


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into an actionable message."""
    try:
        import sounddevice
    except OSError as exc:  # the Linux wheel has no PortAudio of its own
        raise MicrophoneUnavailable(
            "The PortAudio audio library is not installed, so the microphone cannot be used. "
            "IT: install the 'libportaudio2' package (Linux) and restart Clarke Desktop. "
            "You can still import an audio file or type the transcript."
        ) from exc
    module: ModuleType = sounddevice  # sounddevice ships no type information
    return module


def list_input_devices() -> list[InputDevice]:
    sd = load_sounddevice()
    hostapis = sd.query_hostapis()
    devices = []
    for index, info in enumerate(sd.query_devices()):
        if info["max_input_channels"] < 1:
            continue
        devices.append(
            InputDevice(
                name=info["name"],
                hostapi=hostapis[info["hostapi"]]["name"],
                index=index,
                default_samplerate=float(info["default_samplerate"]),
                max_input_channels=int(info["max_input_channels"]),
            )
        )
    return devices


@dataclass(frozen=True)
class MicrophoneSurvey:
    """The input devices found, which one is the system default, and why none could be listed."""

    devices: list[InputDevice]
    default_index: int = -1
    problem: str | None = None  # set when the devices could not be listed at all


def survey_microphones() -> MicrophoneSurvey:
    """Every input device, for the status bar, Settings and `doctor` alike; never raises (no
    microphone is a normal state: the clinician can import audio or type)."""
    try:
        devices = list_input_devices()
    except MicrophoneUnavailable as exc:
        return MicrophoneSurvey([], problem=str(exc))
    except Exception as exc:  # PortAudio can fail in odd ways on broken audio stacks
        log.warning("audio device query failed: %s", type(exc).__name__)
        return MicrophoneSurvey([], problem=f"Audio devices could not be listed ({exc}).")
    try:
        default_index = int(load_sounddevice().default.device[0])
    except Exception:
        default_index = -1
    return MicrophoneSurvey(devices, default_index)


def choose_device(name: str | None = None, hostapi: str | None = None) -> InputDevice:
    """The saved device if it is still present, else the system default input, else the first one."""
    devices = list_input_devices()
    if not devices:
        raise MicrophoneUnavailable(
            "No microphone found. Connect one, or import an audio file or type the transcript."
        )
    if name:
        for device in devices:
            if device.name == name and (hostapi is None or device.hostapi == hostapi):
                return device
        log.warning("saved microphone %r (%s) not found; using the default", name, hostapi)
    sd = load_sounddevice()
    try:
        default_index = sd.default.device[0]
    except Exception:
        default_index = -1
    for device in devices:
        if device.index == default_index:
            return device
    return devices[0]
