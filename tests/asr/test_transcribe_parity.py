"""The app's transcript (numpy front end + ONNX Runtime + CTC) against PyTorch on the same audio."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clarke_desktop.asr.transcriber import OnnxTranscriber
from clarke_desktop.asr.windows import WindowPlan

pytestmark = pytest.mark.export

FRAME = 0.04


def torch_reference(model, snapshot, audio: np.ndarray):
    """Text via HF's tokenizer decode and words via an independent greedy decode of PyTorch logits."""
    import torch
    from transformers import LasrFeatureExtractor, LasrTokenizer

    feats = LasrFeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        logits = model(input_features=feats).logits[0].numpy()
    ids = logits.argmax(-1)
    tokenizer = LasrTokenizer.from_pretrained(str(snapshot))
    text = " ".join(tokenizer.decode(ids.tolist(), skip_special_tokens=True).split())
    special = set(tokenizer.all_special_ids) | {0}
    words: list[list] = []  # [text, start_frame, end_frame]
    frame = 0
    for token, run in itertools.groupby(ids.tolist()):
        n = len(list(run))
        if token not in special:
            piece = tokenizer.convert_ids_to_tokens(token)
            if piece.startswith("▁") or not words:
                words.append([piece.lstrip("▁"), frame, frame + n])
            else:
                words[-1][0] += piece
                words[-1][2] = frame + n
        frame += n
    words = [(w, round(s * FRAME, 3), round(e * FRAME, 3)) for w, s, e in words if w]
    return text, words, logits


def _words(transcript):
    return [(w.text, w.start_s, w.end_s) for w in transcript.words]


@pytest.mark.parametrize("kind", ["speech", "noise"])
def test_transcript_matches_pytorch_greedy_decode(kind, tiny_model, tiny_snapshot, torch_model, speech):
    rng = np.random.default_rng(3)
    audio = speech if kind == "speech" else (0.1 * rng.standard_normal(5 * 16000)).astype(np.float32)
    text, words, logits = torch_reference(torch_model, tiny_snapshot, audio)
    assert len(words) > 3  # the probe must exercise decoding
    assert (logits.argmax(-1) == 0).any(), "probe should contain blank frames"

    transcript = OnnxTranscriber(tiny_model, device="cpu", precision="fp32").transcribe(audio)

    assert transcript.text == text
    assert _words(transcript) == words
    assert transcript.provider == "CPUExecutionProvider"
    assert transcript.duration_s == pytest.approx(audio.size / 16000, abs=1e-3)
    assert all(0.0 < w.confidence <= 1.0 for w in transcript.words)


def test_long_single_pass_matches_pytorch(tiny_model, tiny_snapshot, torch_model, long_speech):
    """With a plan wide enough for one pass, 40 s of audio decodes exactly as PyTorch does."""
    text, words, _ = torch_reference(torch_model, tiny_snapshot, long_speech)
    app = OnnxTranscriber(tiny_model, device="cpu", plan=WindowPlan(center_frames=5000, context_frames=50))
    transcript = app.transcribe(long_speech)
    assert transcript.text == text
    assert _words(transcript) == words


def test_word_confidence_is_the_softmax_probability_of_its_frames(
    tiny_model, torch_model, tiny_snapshot, speech
):
    _, words, logits = torch_reference(torch_model, tiny_snapshot, speech)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    best = probs.max(-1)
    transcript = OnnxTranscriber(tiny_model, device="cpu").transcribe(speech)
    for word in transcript.words:
        frames = best[int(round(word.start_s / FRAME)) : int(round(word.end_s / FRAME))]
        # The least confident token's mean frame probability lies within the word's frame range.
        assert frames.min() - 1e-3 <= word.confidence <= frames.max() + 1e-3


@pytest.mark.parametrize(("precision", "min_agreement"), [("fp16", 0.97), ("int8", 0.85)])
def test_reduced_precision_graphs_agree_with_fp32(precision, min_agreement, tiny_model, speech):
    """fp16 and int8 graphs pick the same token as fp32 on nearly every frame of real speech."""
    from clarke_desktop.asr.features import log_mel

    feats = log_mel(speech)
    exact = OnnxTranscriber(tiny_model, device="cpu", precision="fp32").acoustic.logits(feats)
    reduced_model = OnnxTranscriber(tiny_model, device="cpu", precision=precision)
    assert reduced_model.precision == precision and precision in reduced_model.model_name
    reduced = reduced_model.acoustic.logits(feats)
    assert reduced.shape == exact.shape
    assert (reduced.argmax(-1) == exact.argmax(-1)).mean() >= min_agreement
