"""Answers written together from one shared prefix (a letter's sections), on real llama.cpp with
the embedded Gemma 3 270M GGUF: the prefix is read once, each answer is its own prompt's, and
nothing of a batch is left for the next request."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.llm.base import Turn
from clarke_desktop.llm.llama_engine import MAX_TOGETHER, LlamaCppEngine
from clarke_desktop.llm.streaming import GenerationStats

pytestmark = pytest.mark.slow  # real llama.cpp inference

# Past the 270M model's 512-token sliding window, so the sliding layers' cache has moved on.
RECORD = " ".join(f"Day {i}: creatinine {80 + i} umol/L, potassium 4.{i % 10}." for i in range(30))
QUESTIONS = ("List the rising values.", "List the potassium values.", "Summarise the record in one line.")
UNRELATED = [Turn("user", "Write a short clinic note about a patient with type 2 diabetes.")]


def _asking(question: str, record: str = RECORD) -> list[Turn]:
    text = f"Record: {record}\n{question}"
    return [Turn("user", text, shared_prefix=text.index("\n") + 1)]


PROMPTS = [_asking(q) for q in QUESTIONS]


@pytest.fixture(scope="module")
def engine(gguf_path: Path) -> Iterator[LlamaCppEngine]:
    # Its own engine: the batches here must not change the layout other modules' engine sees.
    with LlamaCppEngine(gguf_path, n_threads=1, n_threads_batch=1) as loaded:
        yield loaded


def _together(
    engine: LlamaCppEngine, prompts: list[list[Turn]], **options
) -> tuple[list[str], list[GenerationStats]]:
    texts = [""] * len(prompts)
    stats: list[GenerationStats | None] = [None] * len(prompts)
    for piece in engine.stream_together(prompts, **options):
        assert stats[piece.index] is None  # nothing comes after an answer's last piece
        texts[piece.index] += piece.text
        if piece.done:
            stats[piece.index] = piece.stats
    assert all(s is not None for s in stats)  # every answer ended
    return texts, [s for s in stats if s is not None]


def test_the_prefix_is_read_once_for_all_the_answers(engine: LlamaCppEngine) -> None:
    encoded = [engine.prompt_with_prefix(p) for p in PROMPTS]
    shared = encoded[0][1]
    requests = [len(tokens) - shared for tokens, _ in encoded]
    assert shared > 520 and all(r > 0 for r in requests)
    engine.forget_prefixes()
    texts, stats = _together(engine, PROMPTS, max_tokens=16, temperature=0)
    assert [s.prompt_tokens for s in stats] == [len(tokens) for tokens, _ in encoded]
    assert [s.prompt_evaluated for s in stats] == [shared + requests[0], *requests[1:]]  # read once, in all
    assert all(0 < s.completion_tokens <= 16 and s.stopped_by in ("eog", "max_tokens") for s in stats)
    assert all(texts)
    again, stats = _together(engine, PROMPTS, max_tokens=16, temperature=0)
    assert [s.prompt_evaluated for s in stats] == requests  # the saved prefix, restored
    assert again == texts  # the same engine and the same batch: the same numbers
    # A regeneration afterwards (one prompt alone) reuses the same saved prefix.
    engine.complete(PROMPTS[1], max_tokens=4, temperature=0)
    assert engine.last_stats.prompt_evaluated == requests[1]


class _Recorder:
    """Every sampled position's logits, by sampler (each answer has its own), and every batch's size."""

    def __init__(self, engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.logits: dict[int, list[np.ndarray]] = {}
        self.sizes: list[int] = []
        sample, decode = llama_cpp.llama_sampler_sample, engine._decode_batch

        def recording_sample(chain, ctx, index):  # type: ignore[no-untyped-def]
            row = llama_cpp.llama_get_logits_ith(ctx, index)
            key = ctypes.cast(chain, ctypes.c_void_p).value or 0
            self.logits.setdefault(key, []).append(
                np.ctypeslib.as_array(row, shape=(engine._n_vocab,)).copy()
            )
            return sample(chain, ctx, index)

        def recording_decode(batch, entries):  # type: ignore[no-untyped-def]
            self.sizes.append(len(entries))
            return decode(batch, entries)

        monkeypatch.setattr(llama_cpp, "llama_sampler_sample", recording_sample)
        monkeypatch.setattr(engine, "_decode_batch", recording_decode)

    def by_answer(self) -> list[list[np.ndarray]]:
        return list(self.logits.values())  # samplers first seen in answer order


def test_an_answer_sees_nothing_of_the_others(
    engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first answer, written beside two different companions of the same length, gets the
    very same numbers: with one layout and one batch shape a leak through the attention mask is
    the only thing that could change them (the numbers of a prompt written alone differ in
    rounding, so they are not the reference)."""
    engine.forget_prefixes()
    first, companions = PROMPTS[0], [_asking("List the urea values."), _asking("List the sodium values.")]
    lengths = {len(engine.prompt_tokens(p)) for p in companions}
    assert len(lengths) == 1  # equal requests: the batches have the same shape
    runs = []
    for companion in companions:
        recorder = _Recorder(engine, monkeypatch)
        texts, _stats = _together(engine, [first, companion], max_tokens=12, temperature=0)
        runs.append((recorder.by_answer(), recorder.sizes, texts))
        monkeypatch.undo()
    (mine_b, other_b), sizes_b, texts_b = runs[0][0], runs[0][1], runs[0][2]
    (mine_c, other_c), sizes_c, _texts_c = runs[1][0], runs[1][1], runs[1][2]
    assert np.abs(other_b[0] - other_c[0]).max() > 1.0  # the companions' own answers do differ
    # Every step taken with the same batch shape in both runs gives the first answer the same logits.
    same_shape = 0
    while same_shape < min(len(sizes_b), len(sizes_c)) and sizes_b[same_shape] == sizes_c[same_shape]:
        same_shape += 1
    compared = min(same_shape, len(mine_b), len(mine_c))
    assert compared >= 2  # the requests' pass and at least one step of both answers
    for step in range(compared):
        assert np.array_equal(mine_b[step], mine_c[step]), f"step {step}"
    assert texts_b[0]


def test_a_request_after_a_batch_gets_what_a_fresh_engine_gives(
    engine: LlamaCppEngine, gguf_path: Path
) -> None:
    _together(engine, PROMPTS, max_tokens=12, temperature=0.3)
    after = engine.complete(UNRELATED, max_tokens=16, temperature=0)
    alone = engine.complete(PROMPTS[2], max_tokens=16, temperature=0)
    with LlamaCppEngine(gguf_path, n_threads=1, n_threads_batch=1) as fresh:  # has never seen a batch
        assert fresh.complete(UNRELATED, max_tokens=16, temperature=0) == after
        assert fresh.complete(PROMPTS[2], max_tokens=16, temperature=0) == alone


def test_a_cancelled_batch_stops_and_leaves_the_engine_usable(engine: LlamaCppEngine) -> None:
    token = CancelToken()
    stats: list[GenerationStats] = []
    received = 0
    with pytest.raises(Cancelled):
        for piece in engine.stream_together(PROMPTS, max_tokens=400, temperature=0.7, cancel=token):
            received += 1
            if piece.stats is not None and piece.stats not in stats:
                stats.append(piece.stats)
            if received == 3:
                token.cancel()
    assert stats and all(s.completion_tokens < 400 for s in stats)
    assert any(s.stopped_by == "cancelled" for s in stats)
    expected = engine.complete(UNRELATED, max_tokens=8, temperature=0)
    assert engine.complete(UNRELATED, max_tokens=8, temperature=0) == expected


def test_only_prompts_that_share_a_prefix_and_fit_are_written_together(
    engine: LlamaCppEngine, gguf_path: Path
) -> None:
    assert engine.can_write_together(PROMPTS, 64)
    other_record = _asking("List the values.", RECORD.replace("creatinine", "urea"))
    refused = {
        "one prompt": [PROMPTS[0]],
        "more than the engine's sequences": [_asking(f"Question {i}.") for i in range(MAX_TOGETHER + 1)],
        "another prefix": [PROMPTS[0], other_record],
        "no declared prefix": [[Turn("user", PROMPTS[0][0].text)], [Turn("user", PROMPTS[1][0].text)]],
    }
    with pytest.raises(ValueError, match="at least 1"):
        engine.stream_together(PROMPTS, max_tokens=0)
    for reason, prompts in refused.items():
        assert not engine.can_write_together(prompts, 64), reason
        with pytest.raises(ValueError, match="cannot be written together"):
            engine.stream_together(prompts, max_tokens=8)
    engine.set_prefix_reuse(False)
    try:
        assert not engine.can_write_together(PROMPTS, 64)  # no reuse: the old way, for comparison
    finally:
        engine.set_prefix_reuse(True)
    engine.set_together(False)
    try:
        assert not engine.can_write_together(PROMPTS, 64)
    finally:
        engine.set_together(True)
    shared = engine.prompt_with_prefix(PROMPTS[0])[1]
    with LlamaCppEngine(gguf_path, max_context=shared + 400, n_threads=1) as small:
        assert small.can_write_together(PROMPTS, 64)  # side by side they fit
        assert not small.can_write_together(PROMPTS, 300)  # each alone fits, side by side not
        assert small.complete(PROMPTS[0], max_tokens=300, temperature=0) is not None
    with LlamaCppEngine(gguf_path, n_threads=1, together=False) as single:
        single.set_together(True)  # made for one sequence: it cannot
        assert not single.can_write_together(PROMPTS, 64)
