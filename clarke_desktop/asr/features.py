"""MedASR's log-mel front end in numpy alone (no torch at run time).

A port of transformers' `LasrFeatureExtractor`: frames of 400 samples every 160 (no centring,
dither or pre-emphasis), symmetric Hann window, |rfft(512)|^2, 128 triangular filters on the
Kaldi mel scale (1127 ln(1 + f/700)) from 125 to 7500 Hz with the DC bin excluded, natural log
floored at 1e-5. Computed in float64 like the reference, returned as float32.
"""

from __future__ import annotations

from functools import cache

import numpy as np

SAMPLE_RATE = 16_000
WIN_LENGTH = 400
HOP_LENGTH = 160
N_FFT = 512
N_MELS = 128
LOG_FLOOR = 1e-5
# Two stride-2 convolutions with kernel 5 need at least 13 feature frames for one CTC frame.
MIN_FEATURE_FRAMES = 13
MIN_SAMPLES = WIN_LENGTH + (MIN_FEATURE_FRAMES - 1) * HOP_LENGTH  # 2320 samples = 0.145 s
# Rows per block: bounds the float64 spectrum's memory whatever the audio length.
_BLOCK_FRAMES = 4096


def _kaldi_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


@cache
def mel_filters() -> np.ndarray:
    """(257, 128) float64 triangular filter bank, first (DC) row zero."""
    linear = np.linspace(0.0, SAMPLE_RATE / 2.0, N_FFT // 2 + 1, dtype=np.float64)[1:]
    bins_mel = _kaldi_mel(linear)[:, None]
    edges = np.linspace(_kaldi_mel(125.0), _kaldi_mel(7500.0), N_MELS + 2, dtype=np.float64)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]])


@cache
def _window() -> np.ndarray:
    return np.hanning(WIN_LENGTH).astype(np.float64)  # symmetric, = torch.hann_window(periodic=False)


def num_feature_frames(num_samples: int) -> int:
    return 0 if num_samples < WIN_LENGTH else (num_samples - WIN_LENGTH) // HOP_LENGTH + 1


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(frames, 128) float32 log-mel features of 16 kHz mono audio in [-1, 1]."""
    samples = np.ascontiguousarray(audio, dtype=np.float32).astype(np.float64)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {samples.shape}")
    n_frames = num_feature_frames(samples.size)
    out = np.empty((n_frames, N_MELS), dtype=np.float32)
    if n_frames == 0:
        return out
    frames = np.lib.stride_tricks.sliding_window_view(samples, WIN_LENGTH)[::HOP_LENGTH]
    window, filters = _window(), mel_filters()
    for start in range(0, n_frames, _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES] * window
        power = np.abs(np.fft.rfft(block, n=N_FFT, axis=-1)) ** 2
        out[start : start + block.shape[0]] = np.log(np.maximum(power @ filters, LOG_FLOOR))
    return out


def ctc_frames_for_features(n_features: int) -> int:
    """CTC frames the encoder's two (kernel 5, stride 2) convolutions produce."""
    t = n_features
    for _ in range(2):
        t = (t - 5) // 2 + 1
    return max(t, 0)
