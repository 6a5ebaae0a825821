"""In-process llama.cpp engine (llama-cpp-python's low-level API) for Gemma 3 / MedGemma GGUFs.

Design choices, each answering a known pitfall (see shared KNOWLEDGE.md):
- Defaults are set explicitly: all layers on the GPU with flash attention when the build can
  offload, the context sized to each request (llama-cpp-python's 512 default silently cuts
  prompts), and prompt + max_tokens over the model's context raises ContextTooLong.
- Prompts are token lists we build: only turn scaffolding is tokenised with special tokens, turn
  text never is, so a transcript cannot inject `<end_of_turn>`.
- The KV memory is cleared before every request, so no request ever sees another's state. A
  prompt that declares a shared prefix (`Turn.shared_prefix`: a letter's instructions, record and
  transcript, the same for every section and regeneration) is the one exception, and an exact
  one: the prefix is read once, the sequence state at its last token is saved
  (`llama_state_seq_get_data`), and each request with the same prefix tokens starts from that
  state restored into the cleared memory, then reads only its own suffix. See `_load_prompt`
  for why this is correct with Gemma 3's sliding-window layers where truncating the cache is not.
- Answers that share that prefix (a letter's sections) can be written together
  (`stream_together`): the prefix is restored once into sequence 0, shared with one sequence per
  answer (`llama_memory_seq_cp` on a unified cache: the cells are shared, not copied), and every
  step decodes one token of each unfinished answer in a single batch. Decoding is bound by reading
  the weights, so on a GPU a step for three or four answers costs little more than a step for one;
  on this project's 2-core CPU a step for three cost 2.2x a step for one (measured).
- One lock per loaded model (a llama.cpp context is not thread-safe); a stream holds it until
  it is exhausted or closed. Cancellation is checked between tokens and prompt chunks.
- Grammar-constrained JSON samples normally first and consults the grammar for the sampled token
  only; only when it is rejected is the grammar applied, to the top candidates first and to the
  whole 262k vocabulary as a last resort (llama.cpp's common sampler does the same).
"""

from __future__ import annotations

import codecs
import ctypes
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import llama_cpp
import numpy as np
from pydantic import BaseModel

from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.llm import _llama_log
from clarke_desktop.llm.base import (
    ContextTooLong,
    LlmEngine,
    LlmError,
    ModelMissing,
    ModelOutOfMemory,
    T,
    Turn,
)
from clarke_desktop.llm.prompt import THINK_END, THINK_START, render_parts
from clarke_desktop.llm.streaming import BatchPiece, GenerationStats, TextPipeline
from clarke_desktop.llm.structured import gbnf_for, is_complete_json, schema_literals, validate_with_retries
from clarke_desktop.schemas import ModelInfo

_backend_lock = threading.Lock()
_backend_ready = False

# After a rejection the grammar is tried on the model's top candidates, widening step by step,
# before the whole vocabulary: its cost grows with the number of candidates checked.
_CANDIDATE_TIERS = (1024, 16384)
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)

# Saved prefix states kept per engine, newest last: the letter being written and the one before it
# (the clinician may go back to regenerate a section there). Each is host memory the size of the
# prefix's KV cells: 13 MB for the embedded model's 1,636-token demo prefix; for MedGemma 27B at
# 4,000 tokens about 0.73 GiB in f16 (10 full-attention layers x 4,000 tokens + 52 sliding layers x
# their 1,024-token window, 8 KiB per token per layer), about half that with a q8_0 cache.
PREFIX_STATES_KEPT = 2

# Answers written together at most: the most narrative sections any document has (SOAP's four).
# An engine made with `together` has a context for this many sequences; its sliding-window layers
# then keep a window per sequence: for MedGemma 27B (52 sliding layers, 8 KiB per position per
# layer in f16) 4 x 1,024 + 512 cells, 1.8 GiB, against 0.6 GiB for one sequence; the 10
# full-attention layers are shared (0.6 GiB at 8k tokens): 2.5 GiB in all against 1.2 GiB.
MAX_TOGETHER = 4

SavedState = ctypes.Array[ctypes.c_uint8]


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            _llama_log.install()
            llama_cpp.llama_backend_init()
            _backend_ready = True


def gpu_offload_supported() -> bool:
    """True when this llama.cpp build has a GPU backend and a device to use."""
    _init_backend()
    return bool(llama_cpp.llama_supports_gpu_offload())


def check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelMissing(f"model file not found: {path}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelMissing(f"{path} is not a GGUF model file (it does not start with 'GGUF')")


def _default_threads() -> int:
    cores = os.cpu_count() or 1
    # Hyper-threads rarely help token generation; with few cores use them all.
    return cores if cores <= 4 else max(4, cores // 2)


class LlamaCppEngine(LlmEngine):
    """LlmEngine over one GGUF file, loaded once; see the module docstring for the design."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        role: str = "ehr_agent",
        info: ModelInfo | None = None,
        max_context: int | None = None,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        gpu: bool | None = None,
        seed: int = 1234,
        prefix_reuse: bool = True,
        together: bool = True,
    ) -> None:
        self.path = Path(model_path)
        check_gguf(self.path)
        _init_backend()
        self._lock = threading.Lock()
        self._seed = seed
        self._threads = n_threads or _default_threads()
        self._threads_batch = n_threads_batch or max(self._threads, os.cpu_count() or 1)
        self._offload = gpu_offload_supported() if gpu is None else gpu
        self._model = self._load_model()
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        train_ctx: int = llama_cpp.llama_model_n_ctx_train(self._model)
        self._max_context = min(max_context, train_ctx) if max_context else train_ctx
        self._ctx: llama_cpp.llama_context_p | None = None
        self._ctx_size = 0
        self._sequences = MAX_TOGETHER if together else 1
        self._bos = llama_cpp.llama_vocab_bos(self._vocab)
        self._think_ids = {
            self._single_token(THINK_START): THINK_START,
            self._single_token(THINK_END): THINK_END,
        }
        self._think_ids.pop(None, None)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._full_candidates: np.ndarray | None = None
        self.last_stats = GenerationStats()
        self._this_thread = threading.local()  # per-thread last stats: see `thread_stats`
        self._prefix_reuse = prefix_reuse
        self._together = together
        self._prefix_states: OrderedDict[tuple[int, ...], SavedState] = OrderedDict()
        base = info or ModelInfo(name=self.path.stem, role=role, file=self.path.name)
        # Honest: layers are only on a GPU when asked for *and* the build has a device for them.
        offloaded = self._offload and gpu_offload_supported()
        self.info = base.model_copy(update={"backend": "llama.cpp", "gpu_offload": offloaded})

    # -- loading -------------------------------------------------------------------------------

    def _load_model(self) -> llama_cpp.llama_model_p:
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = -1 if self._offload else 0  # negative: every layer
        _llama_log.clear_recent()
        # llama_cpp's ctypes wrappers erase their declared types (Any); these are the declared ones.
        model: llama_cpp.llama_model_p | None = llama_cpp.llama_model_load_from_file(
            str(self.path).encode("utf-8"), params
        )
        if not model:
            problems = _llama_log.recent_problems()
            if _llama_log.looks_like_oom(problems):
                raise ModelOutOfMemory(
                    f"not enough memory to load {self.path.name}"
                    f"{' on the GPU' if self._offload else ''}; close other applications or use a "
                    "smaller model"
                )
            detail = problems[-1] if problems else "no detail from llama.cpp"
            raise LlmError(f"llama.cpp could not load {self.path}: {detail}")
        return model

    def _ensure_context(self, needed: int) -> None:
        if self._ctx is not None and self._ctx_size >= needed:
            return
        size = min(self._max_context, max(2048, -(-needed // 1024) * 1024))
        self._free_context()
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = size
        # One cache for all sequences (unified), so the answers written together from one prefix
        # share its cells instead of each holding n_ctx / n_seq_max of a split cache. The number
        # of sequences is fixed for the engine's life, batch or not: the sliding-window layers'
        # cache is sized by it, and a request's text must not depend on what ran before it.
        params.n_seq_max = self._sequences
        params.kv_unified = True
        params.n_batch = min(size, 2048 if self._offload else 512)
        params.n_ubatch = min(params.n_batch, 512)
        params.n_threads = self._threads
        params.n_threads_batch = self._threads_batch
        params.offload_kqv = self._offload
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if self._offload else llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        )
        params.no_perf = True
        # The cache is never truncated to reuse a prefix (a saved state is restored instead, see
        # `_load_prompt`), so the sliding-window layers only need their window, not the whole
        # context: for MedGemma 27B at 8k tokens 1.2 GiB of f16 KV instead of 3.9 GiB.
        params.swa_full = False
        _llama_log.clear_recent()
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            problems = _llama_log.recent_problems()
            raise ModelOutOfMemory(
                f"not enough memory for a {size}-token context with {self.path.name}; shorten the input "
                f"or close other applications ({problems[-1] if problems else 'no detail from llama.cpp'})"
            )
        self._ctx, self._ctx_size, self._n_batch = ctx, size, params.n_batch

    def _free_context(self) -> None:
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx, self._ctx_size = None, 0

    def close(self) -> None:
        with self._lock:
            self._free_context()
            self._prefix_states.clear()
            if self._model is not None:
                llama_cpp.llama_model_free(self._model)
                self._model = None  # type: ignore[assignment]  # closed: _require_open() guards every use
                self._vocab = None

    def _require_open(self) -> None:
        """A closed engine raises instead of handing freed native memory to llama.cpp (a crash)."""
        if self._model is None:
            raise LlmError(
                f"The model {self.info.name} was closed (the app changed models or is shutting down); retry."
            )

    def __enter__(self) -> LlamaCppEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- tokens ----------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._max_context

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids without BOS; `special=True` only for our own control scaffolding."""
        self._require_open()
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, False, special)
        if count < 0:  # buffer too small (cannot happen with bytes + 8, but be exact)
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, False, special)
        return list(buffer[:count])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def prompt_tokens(self, turns: list[Turn]) -> list[int]:
        return self.prompt_with_prefix(turns)[0]

    def prompt_with_prefix(self, turns: list[Turn]) -> tuple[list[int], int]:
        """The prompt's token ids, and how many of them are its declared shared prefix (0: none).

        A shared prefix is tokenised on its own whether or not it is reused, so a request's tokens
        never depend on what ran before it (the writer cuts it at a line start, where the split
        tokenises exactly as the whole text would)."""
        tokens = [self._bos] if self._bos >= 0 else []
        shared = 0
        for part in render_parts(turns):
            tokens += self.tokenize(part.text, special=part.control)
            if part.ends_shared_prefix:
                shared = len(tokens)
        return tokens, shared

    # -- prefix reuse --------------------------------------------------------------------------

    @property
    def prefix_reuse(self) -> bool:
        """Whether a declared shared prefix is read once and reused (the default)."""
        return self._prefix_reuse

    def set_prefix_reuse(self, enabled: bool) -> None:
        """Turn prefix reuse on or off (off: every request reads its whole prompt, for comparison;
        a request's text is the same either way). Off also means nothing is written together.
        Saved states are dropped by the next request."""
        self._prefix_reuse = enabled

    @property
    def together(self) -> bool:
        """Whether `stream_together` writes answers sharing a prefix in one batch (the default)."""
        return self._together

    def set_together(self, enabled: bool) -> None:
        """Off: `can_write_together` says no, so a letter's sections are written one after another
        (for comparison). An engine made with `together=False` has room for one sequence only."""
        self._together = enabled and self._sequences > 1

    def forget_prefixes(self) -> None:
        """Drop every saved prefix state (the next request with a shared prefix reads it again)."""
        with self._lock:
            self._prefix_states.clear()

    @property
    def thread_stats(self) -> GenerationStats | None:
        """The last generation run by the calling thread. A stream runs in the thread that consumes
        it, so a caller reads its own request's figures even while other threads share the engine
        (`last_stats` is whichever request ran last)."""
        stats: GenerationStats | None = getattr(self._this_thread, "stats", None)
        return stats

    def _single_token(self, text: str) -> int | None:
        ids = self.tokenize(text, special=True)
        return ids[0] if len(ids) == 1 else None

    def _token_text(
        self, token: int, decoder: codecs.IncrementalDecoder, buffer: ctypes.Array[ctypes.c_char]
    ) -> str:
        """A sampled token as text: a thinking marker by its id (llama.cpp drops control tokens from
        text), anything else through the answer's UTF-8 decoder (a character may span tokens)."""
        marker = self._think_ids.get(token)
        return marker if marker is not None else decoder.decode(self._piece(token, buffer))

    def _piece(self, token: int, buffer: ctypes.Array[ctypes.c_char]) -> bytes:
        self._require_open()
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]

    # -- public generation API ---------------------------------------------------------------

    def stream(
        self,
        turns: list[Turn],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        stop: list[str] | None = None,
        cancel: CancelToken | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """Yield answer text as it is generated; thinking goes to `on_thinking`, never the answer.

        Raises Cancelled when `cancel` is set from another thread, ContextTooLong at once (before
        anything runs) when prompt + max_tokens exceed the context. The model's lock is held
        while the iterator is live: exhaust it or close() it."""
        tokens, shared = self.prompt_with_prefix(turns)
        return self._stream_text(
            tokens,
            shared=shared,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            cancel=cancel,
            on_thinking=on_thinking,
        )

    def can_write_together(self, prompts: list[list[Turn]], max_tokens: int) -> bool:
        """Whether `stream_together` takes these prompts: two to MAX_TOGETHER prompts that declare
        the same shared prefix, each with a request after it, fitting the context side by side,
        with prefix reuse and `together` on."""
        return self._batch_plan(prompts, max_tokens) is not None

    def _batch_plan(self, prompts: list[list[Turn]], max_tokens: int) -> tuple[list[list[int]], int] | None:
        if not (self._together and self._prefix_reuse and 2 <= len(prompts) <= MAX_TOGETHER):
            return None
        encoded = [self.prompt_with_prefix(turns) for turns in prompts]
        tokens0, shared = encoded[0]
        prefix = tokens0[:shared]
        if shared == 0 or any(s != shared or t[:s] != prefix or len(t) == s for t, s in encoded):
            return None
        if shared + sum(len(t) - shared + max_tokens for t, _ in encoded) > self._max_context:
            return None
        return [tokens for tokens, _ in encoded], shared

    def stream_together(
        self,
        prompts: list[list[Turn]],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        cancel: CancelToken | None = None,
    ) -> Iterator[BatchPiece]:
        """Write an answer to each prompt at the same time, yielding their pieces as they come
        (`BatchPiece.index` says whose; each answer ends with a `done` piece carrying its figures).

        The shared prefix is read or restored once; then every step decodes one token of each
        unfinished answer in one batch. Each answer has its own sampler, seeded as `stream` seeds
        one. Neither answer sees the other's cells (the attention mask is per sequence), but the
        numbers are not those of the prompt written alone: on CPU the quantised matrix kernels
        round a token's activations differently by its row in the batch (first-token logits of
        the embedded model moved by up to ~1.3 of ~20, the greedy tokens did not), as another
        GPU or thread count would. Raises ValueError for prompts `can_write_together` refuses."""
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        plan = self._batch_plan(prompts, max_tokens)
        if plan is None:
            raise ValueError("these prompts cannot be written together (see can_write_together)")
        tokens, shared = plan
        return self._generate_together(tokens, shared, max_tokens, temperature, cancel)

    def generate_json(
        self,
        turns: list[Turn],
        schema: type[T],
        *,
        max_tokens: int,
        retries: int = 1,
        cancel: CancelToken | None = None,
    ) -> T:
        grammar = gbnf_for(schema)
        tokens, shared = self.prompt_with_prefix(turns)
        literal_ids = self._literal_token_ids(schema)

        def attempt(_index: int, temperature: float) -> str:
            return "".join(
                self._stream_text(
                    tokens,
                    shared=shared,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    cancel=cancel,
                    grammar=grammar,
                    literal_ids=literal_ids,
                )
            )

        return validate_with_retries(attempt, schema, retries=retries, model_name=self.info.name)

    def _literal_token_ids(self, schema: type[BaseModel]) -> np.ndarray:
        """Every single token that spells a piece of text the schema's grammar can force (a key
        name, an enum value): tried right after the model's top candidates when it is rejected."""
        cache: dict[type[BaseModel], np.ndarray] = self.__dict__.setdefault("_literal_cache", {})
        if schema not in cache:
            ids: set[int] = set()
            for literal in schema_literals(schema):
                for start in range(len(literal)):
                    for end in range(start + 1, min(len(literal), start + 24) + 1):
                        piece = self.tokenize(literal[start:end])
                        if len(piece) == 1:
                            ids.add(piece[0])
            cache[schema] = np.fromiter(sorted(ids), dtype=np.int32)
        return cache[schema]

    # -- the generation loop -------------------------------------------------------------------

    def _stream_text(
        self,
        tokens: list[int],
        *,
        shared: int = 0,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
        cancel: CancelToken | None = None,
        on_thinking: Callable[[str], None] | None = None,
        grammar: str | None = None,
        literal_ids: np.ndarray | None = None,
    ) -> Iterator[str]:
        self._check_fits(tokens, max_tokens)
        return self._generate(
            tokens, shared, max_tokens, temperature, stop, cancel, on_thinking, grammar, literal_ids
        )

    def _check_fits(self, tokens: list[int], max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        needed = len(tokens) + max_tokens
        if needed > self._max_context:
            raise ContextTooLong(
                f"the prompt is {len(tokens)} tokens and {max_tokens} more were requested, "
                f"{needed} in all, but {self.info.name} holds {self._max_context}; shorten the input "
                "or split it (nothing was cut)"
            )

    def _generate(
        self,
        tokens: list[int],
        shared: int,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None,
        cancel: CancelToken | None,
        on_thinking: Callable[[str], None] | None,
        grammar: str | None,
        literal_ids: np.ndarray | None = None,
    ) -> Iterator[str]:
        with self._lock:
            self._require_open()
            if self._model is None:
                raise LlmError(f"{self.info.name} has been closed")
            stats = GenerationStats(prompt_tokens=len(tokens))
            self.last_stats = self._this_thread.stats = stats
            pipeline = TextPipeline(stop, on_thinking)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            piece_buffer = ctypes.create_string_buffer(64)
            chain = self._make_chain(temperature)
            grammar_sampler = self._make_grammar(grammar) if grammar else None
            started = time.perf_counter()
            first_at = None
            try:
                self._ensure_context(len(tokens) + max_tokens)
                stats.context_size = self._ctx_size
                stats.prompt_evaluated = self._load_prompt(tokens, shared, cancel)
                stats.stopped_by = "max_tokens"
                for _ in range(max_tokens):
                    if cancel is not None and cancel.cancelled:
                        stats.stopped_by = "cancelled"
                        raise Cancelled()
                    sampling_from = time.perf_counter()
                    token = llama_cpp.llama_sampler_sample(chain, self._ctx, -1)
                    if grammar_sampler is not None:
                        token = self._constrain(token, chain, grammar_sampler, stats, literal_ids)
                    stats.sampling_seconds += time.perf_counter() - sampling_from
                    if first_at is None:
                        first_at = time.perf_counter()
                        stats.prompt_seconds = first_at - started
                    stats.completion_tokens += 1
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        stats.stopped_by = "eog"
                        break
                    out = pipeline.feed(self._token_text(token, decoder, piece_buffer))
                    if out:
                        yield out
                    if pipeline.stopped:
                        stats.stopped_by = "stop"
                        break
                    if grammar_sampler is not None and is_complete_json(pipeline.text):
                        stats.stopped_by = "json_complete"
                        break
                    self._decode_one(token)
                tail = pipeline.feed(decoder.decode(b"", final=True)) + pipeline.finish()
                if tail:
                    yield tail
            finally:
                if first_at is not None:
                    stats.decode_seconds = time.perf_counter() - first_at
                llama_cpp.llama_sampler_free(chain)
                if grammar_sampler is not None:
                    llama_cpp.llama_sampler_free(grammar_sampler)

    def _load_prompt(self, tokens: list[int], shared: int, cancel: CancelToken | None) -> int:
        """Bring the cleared context to the state after `tokens`; returns how many were evaluated.

        Why a saved state, not a kept cache: Gemma 3 interleaves sliding-window layers (5 of every
        6; a 1,024-token window on 27B, 512 on 270M), whose cache holds only the last window of
        positions. After a section has been written, the cells holding the end of the prefix
        have been overwritten, so cutting the cache back to the prefix (what llama-cpp-python's
        own prefix matching does, llama-cpp-python PR #2180) leaves those layers without the
        window the next token attends to: it fails or silently garbles. The sequence state saved
        at the exact end of the prefix carries both the full-attention layers' cells and the
        sliding layers' last window, which is all any later token can see, so restoring it is
        the state after reading the prefix. `swa_full` (keep every position in every layer)
        would make cutting back valid too, at ~3x the KV memory on 27B and only for the letter
        still in the cache; a saved state also serves regenerations after other requests ran.

        Every request with a shared prefix continues from a restored state, also the one that
        has just read and saved it: the restored cache is laid out the same way however it was
        produced, so the text written does not depend on what ran before (with several threads,
        attention sums over the cache's cells in a layout-dependent order), and turning reuse off
        changes the time a request takes, never its text. (Answers written together are another
        matter: see `stream_together`.)"""
        memory = llama_cpp.llama_get_memory(self._ctx)
        llama_cpp.llama_memory_clear(memory, True)
        if not 0 < shared < len(tokens):
            self._decode_prompt(tokens, cancel)
            return len(tokens)
        evaluated = self._load_prefix(tokens[:shared], cancel)
        self._decode_prompt(tokens[shared:], cancel)
        return evaluated + len(tokens) - shared

    def _load_prefix(self, prefix: list[int], cancel: CancelToken | None) -> int:
        """Bring sequence 0 of the cleared memory to the state after `prefix` (see `_load_prompt`);
        returns how many tokens were read (0: a saved state was restored)."""
        memory = llama_cpp.llama_get_memory(self._ctx)
        if not self._prefix_reuse:
            self._prefix_states.clear()
        key = tuple(prefix)
        state = self._prefix_states.get(key)
        if state is not None and self._restore_state(state):
            self._prefix_states.move_to_end(key)
            return 0
        llama_cpp.llama_memory_clear(memory, True)  # a failed restore may leave a partial state
        self._decode_prompt(prefix, cancel)
        state = self._save_state()
        llama_cpp.llama_memory_clear(memory, True)
        if not self._restore_state(state):
            raise LlmError(f"llama.cpp could not restore a saved prompt state for {self.info.name}")
        if self._prefix_reuse:
            self._prefix_states[key] = state
            while len(self._prefix_states) > PREFIX_STATES_KEPT:
                self._prefix_states.popitem(last=False)
        return len(prefix)

    def _generate_together(
        self,
        prompts: list[list[int]],
        shared: int,
        max_tokens: int,
        temperature: float,
        cancel: CancelToken | None,
    ) -> Iterator[BatchPiece]:
        """`stream_together`'s batched path: answer `seq` is sequence `seq` of the context."""
        with self._lock:
            self._require_open()
            count = len(prompts)
            stats = [GenerationStats(prompt_tokens=len(tokens)) for tokens in prompts]
            self.last_stats = self._this_thread.stats = stats[0]
            pipelines = [TextPipeline() for _ in prompts]
            decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in prompts]
            piece_buffer = ctypes.create_string_buffer(64)
            chains = [self._make_chain(temperature) for _ in prompts]
            first_at: list[float | None] = [None] * count
            pending: dict[int, int] = {}  # answer -> its sampled token, not yet handled
            ended_seqs: set[int] = set()
            started = time.perf_counter()
            batch = None

            def sample(seq: int, index: int) -> None:
                sampling_from = time.perf_counter()
                pending[seq] = llama_cpp.llama_sampler_sample(chains[seq], self._ctx, index)
                stats[seq].sampling_seconds += time.perf_counter() - sampling_from
                if first_at[seq] is None:
                    now = first_at[seq] = time.perf_counter()
                    stats[seq].prompt_seconds = now - started

            try:
                self._ensure_context(shared + sum(len(t) - shared + max_tokens for t in prompts))
                batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
                memory = llama_cpp.llama_get_memory(self._ctx)
                llama_cpp.llama_memory_clear(memory, True)
                read = self._load_prefix(prompts[0][:shared], cancel)
                for seq in range(1, count):  # shares the prefix's cells: nothing is copied
                    llama_cpp.llama_memory_seq_cp(memory, 0, seq, -1, -1)
                for seq, st in enumerate(stats):
                    st.context_size, st.stopped_by = self._ctx_size, "max_tokens"
                    st.prompt_evaluated = len(prompts[seq]) - shared + (read if seq == 0 else 0)
                # The first answer's request is read on its own, so its first words come as soon
                # as they would written alone; the others' requests join the first step's batch.
                # An answer's first token is sampled from the chunk holding its request's end.
                requests = [
                    (token, shared + i, seq, i == len(tokens) - shared - 1)
                    for seq, tokens in enumerate(prompts)
                    for i, token in enumerate(tokens[shared:])
                ]
                first_request = len(prompts[0]) - shared
                joining, requests = requests[first_request:], requests[:first_request]
                self._decode_chunks(batch, requests, sample, cancel)
                positions = [len(tokens) for tokens in prompts]
                active = [0]
                while active:
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()
                    step: list[tuple[int, int, int, bool]] = []
                    for seq in list(active):
                        token, st = pending.pop(seq), stats[seq]
                        st.completion_tokens += 1
                        ended = None
                        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                            ended = "eog"
                        else:
                            out = pipelines[seq].feed(self._token_text(token, decoders[seq], piece_buffer))
                            if out:
                                yield BatchPiece(seq, out, stats=st)
                            if st.completion_tokens >= max_tokens:
                                ended = "max_tokens"
                        if ended is None:
                            step.append((token, positions[seq], seq, True))
                            positions[seq] += 1
                            continue
                        active.remove(seq)
                        ended_seqs.add(seq)
                        st.stopped_by = ended
                        tail = (
                            pipelines[seq].feed(decoders[seq].decode(b"", final=True))
                            + pipelines[seq].finish()
                        )
                        st.decode_seconds = time.perf_counter() - (first_at[seq] or started)
                        llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)  # its own cells only
                        yield BatchPiece(seq, tail, done=True, stats=st)
                    step += joining
                    active += sorted({seq for _token, _pos, seq, _last in joining})
                    joining = []
                    self._decode_chunks(batch, step, sample, cancel)
            except Cancelled:
                for seq in range(count):
                    if seq not in ended_seqs:
                        stats[seq].stopped_by = "cancelled"
                raise
            finally:
                for chain in chains:
                    llama_cpp.llama_sampler_free(chain)
                if batch is not None:
                    llama_cpp.llama_batch_free(batch)

    def _decode_chunks(
        self,
        batch: llama_cpp.llama_batch,
        entries: list[tuple[int, int, int, bool]],
        sample: Callable[[int, int], None],
        cancel: CancelToken | None,
    ) -> None:
        """Decode entries n_batch at a time; `sample(sequence, index)` for each that wants logits,
        right after the chunk that holds it (the next decode replaces the logits)."""
        for start in range(0, len(entries), self._n_batch):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            chunk = entries[start : start + self._n_batch]
            self._decode_batch(batch, chunk)
            for index, (_token, _pos, seq, wants_logits) in enumerate(chunk):
                if wants_logits:
                    sample(seq, index)

    def _decode_batch(self, batch: llama_cpp.llama_batch, entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) entries in one llama_decode call."""
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            # llama_cpp types these pointers' items as ctypes values; a c_int32 slot takes an int.
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1  # type: ignore[call-overload]
            batch.logits[i] = logits
            batch.seq_id[i][0] = seq
        self._check_decode(llama_cpp.llama_decode(self._ctx, batch))

    def _save_state(self) -> SavedState:
        size = llama_cpp.llama_state_seq_get_size(self._ctx, 0)
        state: SavedState = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, state, size, 0)
        if written != size:
            raise LlmError(f"llama.cpp could not save a prompt state for {self.info.name}")
        return state

    def _restore_state(self, state: SavedState) -> bool:
        """Restore into sequence 0 of the cleared memory; False if llama.cpp refused it (it is
        then read again: a context made since may have other settings)."""
        return bool(llama_cpp.llama_state_seq_set_data(self._ctx, state, len(state), 0))

    def _decode_prompt(self, tokens: list[int], cancel: CancelToken | None) -> None:
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        for start in range(0, len(tokens), self._n_batch):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            count = min(self._n_batch, len(tokens) - start)
            chunk = ctypes.cast(
                ctypes.byref(array, start * ctypes.sizeof(llama_cpp.llama_token)),
                ctypes.POINTER(llama_cpp.llama_token),
            )
            self._check_decode(llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(chunk, count)))

    def _decode_one(self, token: int) -> None:
        self._token_slot = getattr(self, "_token_slot", None) or (llama_cpp.llama_token * 1)()
        self._token_slot[0] = token
        self._check_decode(
            llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(self._token_slot, 1))
        )

    def _check_decode(self, status: int) -> None:
        if status == 0:
            return
        problems = _llama_log.recent_problems()
        if status < -1 and (self._offload or _llama_log.looks_like_oom(problems)):
            raise ModelOutOfMemory(
                f"{self.info.name} ran out of memory while generating (llama_decode {status}); "
                "shorten the input or close other applications"
            )
        detail = problems[-1] if problems else "no detail from llama.cpp"
        raise LlmError(f"llama.cpp failed while generating with {self.info.name} (status {status}): {detail}")

    # -- sampling ------------------------------------------------------------------------------

    def _make_chain(self, temperature: float) -> llama_cpp.llama_sampler_p:
        chain: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(40))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(0.95, 1))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_min_p(0.05, 1))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(self._seed))
        return chain

    def _make_grammar(self, grammar: str) -> llama_cpp.llama_sampler_p:
        sampler: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_init_grammar(
            self._vocab, grammar.encode("utf-8"), b"root"
        )
        if not sampler:
            raise LlmError("llama.cpp rejected the JSON grammar built from the schema")
        return sampler

    def _constrain(
        self,
        token: int,
        chain: llama_cpp.llama_sampler_p,
        grammar: llama_cpp.llama_sampler_p,
        stats: GenerationStats,
        literal_ids: np.ndarray | None = None,
    ) -> int:
        """Keep the normally sampled token if the grammar allows it, else resample under the grammar."""
        if not self._grammar_allows(grammar, token):
            stats.grammar_rejections += 1
            token = self._resample_under_grammar(chain, grammar, stats, literal_ids)
        llama_cpp.llama_sampler_accept(grammar, token)
        return token

    def _grammar_allows(self, grammar: llama_cpp.llama_sampler_p, token: int) -> bool:
        # llama_cpp declares `id` as c_int32, but a ctypes field of a simple type is a plain int.
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 1.0, 0.0  # type: ignore[assignment]
        single = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(single))
        return not math.isinf(single.data[0].logit)

    def _resample_under_grammar(
        self,
        chain: llama_cpp.llama_sampler_p,
        grammar: llama_cpp.llama_sampler_p,
        stats: GenerationStats,
        literal_ids: np.ndarray | None = None,
    ) -> int:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, -1), shape=(self._n_vocab,))
        token = None
        for size in _CANDIDATE_TIERS:
            if size >= self._n_vocab:
                break
            top = np.argpartition(logits, -size)[-size:]
            if literal_ids is not None and len(literal_ids):
                # Forced schema text (a key the model would not write) is rarely among its top
                # candidates: add the schema's own tokens so the full vocabulary is rarely needed.
                top = np.union1d(top, literal_ids)
            size = len(top)
            candidates = np.empty(size, dtype=_TOKEN_DATA)
            candidates["id"], candidates["logit"], candidates["p"] = top, logits[top], 0.0
            token = self._pick(candidates, chain, grammar)
            if token is not None:
                break
        if token is None:  # the grammar wants something the model ranks very low
            stats.full_vocab_fallbacks += 1
            if self._full_candidates is None:
                self._full_candidates = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
                self._full_candidates["id"] = np.arange(self._n_vocab, dtype=np.int32)
            full = self._full_candidates
            full["logit"], full["p"] = logits, 0.0
            token = self._pick(full, chain, grammar)
        if token is None:
            raise LlmError("the JSON grammar allows no token here; the schema may be unsatisfiable")
        return token

    @staticmethod
    def _pick(
        candidates: np.ndarray, chain: llama_cpp.llama_sampler_p, grammar: llama_cpp.llama_sampler_p
    ) -> int | None:
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=len(candidates),
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        if not np.isfinite(candidates["logit"]).any():
            return None
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        if array.selected < 0:
            return None
        return int(array.data[array.selected].id)
