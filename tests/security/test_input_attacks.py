"""A small file that claims hours of audio (issue #16's 10-hour silent FLAC) is refused from its
header before a sample is decoded, with the real cap (3 hours), not a test-sized one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clarke_desktop.audio.files import AudioError, load_audio

RATE = 16_000


def _flac_claiming(path: Path, seconds: int) -> None:
    """A real FLAC whose STREAMINFO says it holds `seconds` of audio: what a silent recording of
    that length looks like to a reader before decoding (silence compresses to almost nothing)."""
    sf.write(path, np.zeros(RATE, dtype=np.float32), RATE, format="FLAC")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    # STREAMINFO bytes 10..17: sample rate (20 bits), channels-1 (3), bits-1 (5), total samples (36)
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (seconds * RATE)
    data[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_a_ten_hour_flac_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = tmp_path / "ten-hours.flac"
    _flac_claiming(bomb, 10 * 3600)
    assert sf.info(str(bomb)).frames == 10 * 3600 * RATE and bomb.stat().st_size < 64 * 1024
    with pytest.raises(AudioError, match=r"claims 10.0 hours of audio; at most 3.0 hours is read"):
        load_audio(bomb)


def test_a_recording_under_the_cap_still_reads(tmp_path: Path) -> None:
    ordinary = tmp_path / "one-second.flac"
    sf.write(ordinary, np.zeros(RATE, dtype=np.float32), RATE, format="FLAC")
    assert load_audio(ordinary).size == RATE


@pytest.mark.parametrize("url", ["http://fhir.trust.nhs.uk/R4", "http://10.0.0.5:8080/fhir", "ftp://x/fhir", "fhir"])
def test_a_hospital_fhir_server_is_reached_only_over_https_off_this_computer(url: str) -> None:
    """The record and every signed letter would cross the network in the clear."""
    from clarke_desktop.fhir.client import FhirError
    from clarke_desktop.fhir.remote import RemoteFhirClient

    with pytest.raises(FhirError, match="cannot be used"):
        RemoteFhirClient(url)
    for allowed in ("https://fhir.trust.nhs.uk/R4", "http://127.0.0.1:8080/fhir", "http://localhost:8080"):
        RemoteFhirClient(allowed).close()
