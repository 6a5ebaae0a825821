"""Greedy CTC decoding rules on hand-made frame scores (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from clarke_desktop.asr.ctc import FrameScores, collapse, decode
from clarke_desktop.asr.model_dir import Vocabulary

TOKENS = ["<epsilon>", "</s>", "<unk>", "▁", "▁gli", "cla", "zide", "▁eighty", "▁mg", "▁{new", "▁paragraph}"]
VOCAB = Vocabulary(tokens=TOKENS, blank_id=0, special_ids=frozenset({1, 2}))


def scores(ids, probs=None):
    ids = np.asarray(ids, np.int32)
    return FrameScores(
        ids=ids, probs=np.asarray(probs if probs is not None else [0.9] * ids.size, np.float32)
    )


def test_repeats_collapse_blanks_separate_and_specials_vanish():
    #        0  1  2  3  4  5  6  7  8  9 10 11 12
    ids = [0, 4, 4, 5, 0, 5, 6, 1, 0, 7, 7, 2, 8]
    words = decode(scores(ids), VOCAB)
    assert [w.text for w in words] == ["gliclaclazide", "eighty", "mg"]
    assert (words[0].start_s, words[0].end_s) == (0.04, 0.28)
    assert (words[1].start_s, words[1].end_s) == (0.36, 0.44)
    assert (words[2].start_s, words[2].end_s) == (0.48, 0.52)


def test_bare_word_start_and_dictated_tokens_are_kept():
    words = decode(scores([3, 5, 6, 0, 9, 10]), VOCAB)
    assert [w.text for w in words] == ["clazide", "{new", "paragraph}"]
    assert words[0].start_s == 0.0


def test_first_token_without_word_start_still_makes_a_word():
    assert [w.text for w in decode(scores([5, 6, 0, 8]), VOCAB)] == ["clazide", "mg"]


def test_confidence_is_the_least_confident_token_mean():
    words = decode(scores([4, 4, 5, 6], [0.8, 0.6, 0.9, 0.3]), VOCAB)
    assert words[0].confidence == pytest.approx(0.3)
    words = decode(scores([4, 4, 5], [0.8, 0.6, 0.9]), VOCAB)
    assert words[0].confidence == pytest.approx(0.7)


def test_merging_frames_before_collapse_keeps_a_straddling_token_once():
    left, right = scores([0, 4, 4]), scores([4, 5, 0])
    merged = FrameScores.concat([left, right])
    assert [t.id for t in collapse(merged, VOCAB)] == [4, 5]
    assert [w.text for w in decode(merged, VOCAB)] == ["glicla"]


def test_from_logits_gives_argmax_and_its_softmax_probability():
    logits = np.log(np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], np.float32))
    fs = FrameScores.from_logits(logits)
    assert fs.ids.tolist() == [1, 0]
    np.testing.assert_allclose(fs.probs, [0.7, 0.5], rtol=1e-6)


def test_empty_input_gives_no_words():
    assert decode(FrameScores.concat([]), VOCAB) == []
    assert decode(scores([0, 0, 1]), VOCAB) == []
