"""A small file claiming hours of audio (a decompression bomb) is refused from its header, before
a sample is decoded; an ordinary recording is read as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clarke_desktop.audio import files
from clarke_desktop.audio.files import AudioError, load_audio


def test_audio_longer_than_the_cap_is_refused_from_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, np.zeros(16_000 * 3, dtype=np.float32), 16_000, format="FLAC")  # 3 s of silence
    monkeypatch.setattr(files, "MAX_SECONDS", 2)  # the same check as 3 hours, on a small file
    with pytest.raises(AudioError, match="long.flac. claims 3 seconds of audio; at most 2 seconds is read"):
        load_audio(path)
    monkeypatch.setattr(files, "MAX_SECONDS", 3 * 3600)
    assert load_audio(path).size == 16_000 * 3
