"""Greedy CTC decoding with word timestamps and per-word confidence.

Works on per-frame scores (argmax id and its softmax probability), so long audio can be decoded
window by window and merged at frame level before repeats are collapsed: a token that straddles
a window boundary is still emitted once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clarke_desktop.asr.model_dir import Vocabulary
from clarke_desktop.schemas import Word

FRAME_SECONDS = 0.04  # 4x subsampling of 10 ms feature frames
WORD_START = "▁"


@dataclass
class FrameScores:
    ids: np.ndarray  # (T,) int32 argmax token per CTC frame
    probs: np.ndarray  # (T,) float32 softmax probability of that token

    @classmethod
    def from_logits(cls, logits: np.ndarray) -> FrameScores:
        logits = np.asarray(logits, dtype=np.float32)
        ids = logits.argmax(axis=-1).astype(np.int32)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probs = 1.0 / np.exp(shifted).sum(axis=-1)  # exp(0) / sum: probability of the argmax
        return cls(ids=ids, probs=probs.astype(np.float32))

    @classmethod
    def concat(cls, parts: list[FrameScores]) -> FrameScores:
        if not parts:
            return cls(ids=np.zeros(0, np.int32), probs=np.zeros(0, np.float32))
        return cls(ids=np.concatenate([p.ids for p in parts]), probs=np.concatenate([p.probs for p in parts]))

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass
class Token:
    id: int
    start: int  # first frame of the run
    end: int  # one past the last frame of the run
    prob: float  # mean probability over the run


def collapse(scores: FrameScores, vocabulary: Vocabulary, frame_offset: int = 0) -> list[Token]:
    """Collapse repeated frames, then drop blank and special tokens (the order HF uses)."""
    ids = scores.ids
    if ids.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    ends = np.append(starts[1:], ids.size)
    sums = np.add.reduceat(scores.probs.astype(np.float64), starts)
    tokens = []
    drop = vocabulary.special_ids | {vocabulary.blank_id}
    for start, end, total in zip(starts.tolist(), ends.tolist(), sums.tolist(), strict=True):
        token_id = int(ids[start])
        if token_id in drop:
            continue
        tokens.append(Token(token_id, start + frame_offset, end + frame_offset, total / (end - start)))
    return tokens


def words_from_tokens(tokens: list[Token], vocabulary: Vocabulary) -> list[Word]:
    """Group tokens into words at "▁"; a word's confidence is its least confident token."""
    words: list[Word] = []
    text, start, end, conf = "", None, 0, 1.0

    def flush() -> None:
        if text and start is not None:
            words.append(
                Word(
                    text=text,
                    start_s=round(start * FRAME_SECONDS, 3),
                    end_s=round(end * FRAME_SECONDS, 3),
                    confidence=round(conf, 4),
                )
            )

    for token in tokens:
        piece = vocabulary.tokens[token.id]
        if piece.startswith(WORD_START) or start is None:
            flush()
            text, start, conf = "", token.start, 1.0
            piece = piece.removeprefix(WORD_START)
        # Pieces may hold further "▁" (rare in SentencePiece output): treat them as spaces.
        text += piece.replace(WORD_START, " ")
        end = token.end
        conf = min(conf, token.prob)
    flush()
    # A word whose text holds a space (from an inner "▁") becomes several words with its timing.
    out: list[Word] = []
    for word in words:
        parts = word.text.split()
        out.extend(word.model_copy(update={"text": part}) for part in parts)
    return out


def decode(scores: FrameScores, vocabulary: Vocabulary) -> list[Word]:
    return words_from_tokens(collapse(scores, vocabulary), vocabulary)
