"""Long audio: fixed windows with context on both sides, aligned to the CTC frame grid.

CTC frame i sees samples [640 i, 640 i + 2320). A window starting at a multiple of 640 samples
therefore produces exactly the frames a single pass would, up to what the encoder's attention
and convolutions see; the context on each side absorbs that and only each window's centre is
kept. Audio that fits in one window (centre + right context) is a single pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarke_desktop.asr.features import HOP_LENGTH, MIN_SAMPLES, ctc_frames_for_features, num_feature_frames

FRAME_SAMPLES = 4 * HOP_LENGTH  # 640 samples = 40 ms per CTC frame


@dataclass(frozen=True)
class Window:
    first: int  # frames the model sees: [first, last)
    last: int
    keep_from: int  # frames kept: [keep_from, keep_to)
    keep_to: int

    @property
    def samples(self) -> tuple[int, int]:
        return self.first * FRAME_SAMPLES, (self.last - 1) * FRAME_SAMPLES + MIN_SAMPLES


@dataclass(frozen=True)
class WindowPlan:
    center_frames: int = 400  # 16 s kept per window
    context_frames: int = 50  # 2 s each side (20 s windows)

    def __post_init__(self) -> None:
        if self.center_frames < 1 or self.context_frames < 0:
            raise ValueError("center_frames must be >= 1 and context_frames >= 0")

    @property
    def single_pass_frames(self) -> int:
        return self.center_frames + self.context_frames

    def window_at(self, start: int, total: int) -> Window:
        """The window whose kept part starts at frame `start` of a `total`-frame recording."""
        if total - start <= self.single_pass_frames:  # the rest fits: last window
            return Window(max(0, start - self.context_frames), total, start, total)
        end = start + self.center_frames
        return Window(max(0, start - self.context_frames), end + self.context_frames, start, end)

    def windows(self, total: int) -> list[Window]:
        out, start = [], 0
        while start < total:
            window = self.window_at(start, total)
            out.append(window)
            start = window.keep_to
        return out

    def is_final(self, start: int, available: int) -> bool:
        """Whether the window at `start` is already fixed with `available` frames (more may come).

        Fixed once more frames exist than a last window would take: whatever arrives later, the
        offline plan places the same window there.
        """
        return available - start > self.single_pass_frames


def total_frames(num_samples: int) -> int:
    return ctc_frames_for_features(num_feature_frames(num_samples))
