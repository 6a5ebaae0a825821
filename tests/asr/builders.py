"""Random-weight MedASR-layout snapshots for tests and benchmarks (needs torch + transformers)."""

from __future__ import annotations

import itertools
import string
from pathlib import Path

LOCAL_REVISION = "0123456789abcdef0123456789abcdef01234567"

WORDS = [
    "the",
    "patient",
    "has",
    "type",
    "two",
    "diabetes",
    "on",
    "gliclazide",
    "and",
    "metformin",
    "blood",
    "pressure",
    "is",
    "fine",
    "today",
    "with",
    "no",
    "chest",
    "pain",
    "review",
    "in",
    "three",
    "months",
    "ramipril",
    "dose",
]

TINY_ENCODER = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    conv_kernel_size=9,
    subsampling_conv_channels=32,
)


def medasr_layout_tokenizer(vocab_size: int = 512):
    """A LasrTokenizer laid out like MedASR's: <epsilon> (CTC blank) 0, </s> 1, <unk> 2, "▁", pieces."""
    from transformers import LasrTokenizer

    pieces = [
        ("<epsilon>", 0.0),
        ("</s>", 0.0),
        ("<unk>", 0.0),
        ("▁", -2.0),
        ("{new", -4.0),
        ("▁paragraph}", -4.0),
    ]
    seen = {p for p, _ in pieces}

    def add(piece: str, score: float) -> None:
        if piece not in seen and len(pieces) < vocab_size:
            seen.add(piece)
            pieces.append((piece, score))

    for word in WORDS:
        add("▁" + word, -5.0)
        add(word, -6.0)
    for a, b in itertools.product(string.ascii_lowercase, repeat=2):
        add("▁" + a + b, -8.0)
        add(a + b, -8.5)
    return LasrTokenizer(vocab=pieces, pad_token="<epsilon>", extra_ids=0)


def build_snapshot(
    out: Path,
    *,
    tiny: bool = True,
    seed: int = 0,
    local_only: bool = False,
    init_range: float = 0.2,
    calibration: list | None = None,
) -> Path:
    """save_pretrained a random LasrForCTC (tiny or MedASR-size) plus tokenizer into `out`.

    calibration: audio on which the CTC head's biases are set so that about half the frames are
    blank and most tokens start words (default: a synthetic probe).
    local_only zeroes every attention output projection, so each frame only sees a bounded
    neighbourhood (convolutions): windowed decoding must then equal a single pass exactly.
    A wider init range than the default gives logits with clear argmax margins.
    """
    import torch
    from transformers import LasrCTCConfig, LasrForCTC

    torch.manual_seed(seed)
    encoder = dict(TINY_ENCODER) if tiny else {}
    encoder["initializer_range"] = init_range
    model = LasrForCTC(LasrCTCConfig(encoder_config=encoder)).eval()
    vocab = model.config.vocab_size
    tokenizer = medasr_layout_tokenizer(vocab)
    with torch.no_grad():
        if local_only:
            for layer in model.encoder.layers:
                layer.self_attn.o_proj.weight.zero_()
        # Raise the blank logit until about half the frames are blank, as in real CTC output.
        import numpy as np

        from clarke_desktop.asr.export import probe_audio
        from clarke_desktop.asr.features import log_mel

        audio = np.concatenate(calibration) if calibration else probe_audio(6.0, seed=123)
        feats = torch.from_numpy(log_mel(audio))[None]
        # Favour word-start pieces so that words are short, as in speech.
        starts = [
            i for i, t in enumerate(tokenizer.convert_ids_to_tokens(list(range(vocab)))) if t.startswith("▁")
        ]
        logits = model(input_features=feats).logits[0]
        gap = logits.max(-1).values - logits[:, starts].max(-1).values
        model.ctc_head.bias[starts] += float(gap.quantile(0.6))
        logits = model(input_features=feats).logits[0]
        gap = logits[:, 1:].max(-1).values - logits[:, 0]
        model.ctc_head.bias[0] += float(gap.median())
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
