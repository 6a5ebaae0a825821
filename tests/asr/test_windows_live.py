"""Long audio in windows and live transcription give the same transcript as a single pass."""

from __future__ import annotations

import numpy as np
import pytest

from clarke_desktop.asr.base import AudioError, LiveTranscriber, Transcriber
from clarke_desktop.asr.transcriber import OnnxTranscriber
from clarke_desktop.asr.windows import WindowPlan, total_frames

pytestmark = pytest.mark.export

SMALL = WindowPlan(center_frames=60, context_frames=24)  # 2.4 s kept, ~1 s context each side
SINGLE = WindowPlan(center_frames=100_000, context_frames=0)


def _words(t):
    return [(w.text, w.start_s, w.end_s, w.confidence) for w in t.words]


def test_plan_covers_every_frame_once():
    for total in (1, 50, 84, 85, 86, 1000, 12345):
        windows = SMALL.windows(total)
        kept = [f for w in windows for f in range(w.keep_from, w.keep_to)]
        assert kept == list(range(total))
        assert all(w.first <= w.keep_from < w.keep_to <= w.last <= total for w in windows)
        assert all(w.keep_from - w.first <= SMALL.context_frames for w in windows)
    assert len(SMALL.windows(SMALL.single_pass_frames)) == 1
    assert len(SMALL.windows(SMALL.single_pass_frames + 1)) == 2


def test_windowed_equals_single_pass_when_context_covers_the_receptive_field(local_model, long_speech):
    """With attention silenced each frame sees only its convolutional neighbourhood (< 24 frames),
    so the merge must reproduce the single pass token for token, timestamps included."""
    single = OnnxTranscriber(local_model, device="cpu", plan=SINGLE).transcribe(long_speech)
    windowed_model = OnnxTranscriber(local_model, device="cpu", plan=SMALL)
    assert len(SMALL.windows(total_frames(long_speech.size))) > 5
    windowed = windowed_model.transcribe(long_speech)
    assert len(single.words) > 20
    assert windowed.text == single.text
    assert [(w.text, w.start_s, w.end_s) for w in windowed.words] == [
        (w.text, w.start_s, w.end_s) for w in single.words
    ]
    np.testing.assert_allclose(
        [w.confidence for w in windowed.words], [w.confidence for w in single.words], atol=1e-3
    )


def test_windowed_differs_when_context_is_too_short(local_model, long_speech):
    """The equality above is not automatic: without context the window edges change the output."""
    single = OnnxTranscriber(local_model, device="cpu", plan=SINGLE).transcribe(long_speech)
    no_context = OnnxTranscriber(local_model, device="cpu", plan=WindowPlan(60, 0)).transcribe(long_speech)
    assert _words(no_context) != _words(single)


def test_audio_that_fits_one_window_is_a_single_pass(tiny_model, speech):
    default = OnnxTranscriber(tiny_model, device="cpu")
    assert len(default.plan.windows(total_frames(speech.size))) == 1
    assert _words(default.transcribe(speech)) == _words(
        OnnxTranscriber(tiny_model, plan=SINGLE).transcribe(speech)
    )


@pytest.mark.parametrize("chunk_ms", [20, 100, 730])
def test_live_final_equals_offline(tiny_model, long_speech, chunk_ms):
    transcriber = OnnxTranscriber(tiny_model, device="cpu", plan=SMALL)
    assert isinstance(transcriber, Transcriber)
    offline = transcriber.transcribe(long_speech)
    live = transcriber.live(partial_interval_s=1.0)
    assert isinstance(live, LiveTranscriber)
    step = int(16 * chunk_ms)
    stable_history = []
    for i in range(0, long_speech.size, step):
        partial = live.feed(long_speech[i : i + step])
        stable_history.append(partial.stable_text)
    final = live.finish()
    assert final.text == offline.text
    assert _words(final) == _words(offline)
    # Stable text only grows, and is always the start of the final transcript.
    for earlier, later in zip(stable_history, stable_history[1:], strict=False):
        assert later.startswith(earlier)
    assert stable_history[-1] and final.text.startswith(stable_history[-1])
    assert partial.tentative_text  # the open window is shown before finish
    # Each window is committed once; tentative passes are throttled by audio time, not chunk count.
    seconds = long_speech.size / 16000
    assert live.passes <= len(SMALL.windows(total_frames(long_speech.size))) + seconds / 1.0 + 1


def test_live_finish_reuses_the_last_tentative_pass(tiny_model, speech):
    live = OnnxTranscriber(tiny_model, device="cpu").live(partial_interval_s=0.0)
    live.feed(speech)
    passes = live.passes
    live.finish()
    assert live.passes == passes  # nothing new arrived: no model run after the last chunk


def test_live_rejects_too_short_and_bad_chunks(tiny_model):
    live = OnnxTranscriber(tiny_model, device="cpu").live()
    with pytest.raises(AudioError, match="mono"):
        live.feed(np.zeros((100, 2), np.float32))
    live.feed(np.zeros(1000, np.float32))
    with pytest.raises(AudioError, match="too short"):
        live.finish()


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(2000, np.float32), "too short"),
        (np.zeros((3000, 2)), "mono"),
    ],
)
def test_transcribe_rejects_unusable_arrays(tiny_model, audio, message):
    with pytest.raises(AudioError, match=message):
        OnnxTranscriber(tiny_model, device="cpu").transcribe(audio)
