"""Whisper's encoder on a window fitted to the utterance instead of its fixed 30 seconds.

faster-whisper pads every utterance's features with zeros to Whisper's 30 s window (3000 frames) before the encoder,
so a 2 s question costs as much to encode as 30 s of speech: about 400 ms of the packaged tiny.en on two cores. Since
CTranslate2 3.19 the encoder also takes shorter inputs. Cutting the zero padding down to `window_frames` (and never
into the utterance itself) gave the same text for every demo recording at 10 s in about a third of the time
(docs/benchmarks.md). A window much shorter than Whisper was trained on is where its accuracy drops, so the window
keeps a margin of padding after the speech and a floor set by `[stt] encoder_window_s`.
"""

from __future__ import annotations

from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms frames: Whisper's own window
FRAMES_PER_SECOND = 100
MARGIN_FRAMES = 100  # padding kept after the speech, so the last word never sits at the window's edge


def fitted_frames(features: np.ndarray, min_frames: int) -> int:
    """How many frames of `features` (padded with all-zero columns after the speech) the encoder reads."""
    spoken = np.flatnonzero(np.any(features.reshape(-1, features.shape[-1]) != 0.0, axis=0))
    content = int(spoken[-1]) + 1 if spoken.size else 0
    return min(int(features.shape[-1]), max(min_frames, content + MARGIN_FRAMES))


class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]  # faster-whisper ships no type hints
    """A `WhisperModel` whose encoder reads at least `window_frames` frames, more only when the speech needs them."""

    def __init__(self, *args: Any, window_frames: int = FULL_WINDOW_FRAMES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_frames = window_frames

    def encode(self, features: np.ndarray) -> ctranslate2.StorageView:
        return super().encode(features[..., : fitted_frames(features, self.window_frames)])
