"""Per-NPC pitch and timbre on top of any Piper voice, so NPCs sharing the packaged voice sound like different people.

Pitch: Piper speaks `factor` times slower (its length_scale), then the audio is resampled to `1/factor` as many
samples, which shortens it back to the right length and raises every frequency by `factor` (formants move with the
pitch: up sounds younger and lighter, down older and heavier). Timbre: a gentle spectral tilt, brighter (more
high frequencies) above 0, darker and warmer below 0. Both are plain numpy/soxr work on one sentence, a few
milliseconds.
"""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import NDArray

from host.speech.audio import Int16Array


def pitch_factor(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


def shape(samples: Int16Array, sample_rate: int, *, semitones: float, timbre: float) -> Int16Array:
    """`samples` (spoken `pitch_factor(semitones)` times slower than wanted) with pitch and timbre applied."""
    if (semitones == 0.0 and timbre == 0.0) or samples.size == 0:
        return samples
    audio = samples.astype(np.float32) / 32768.0
    peak = float(np.max(np.abs(audio)))
    if semitones != 0.0:
        audio = soxr.resample(audio, sample_rate, sample_rate / pitch_factor(semitones)).astype(np.float32)
    if timbre != 0.0:
        audio = _tilt(audio, timbre)
    shaped_peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if shaped_peak > 0.0:
        audio *= peak / shaped_peak  # keep Piper's level: the tilt must neither clip nor quieten the voice
    shaped: Int16Array = np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)
    return shaped


def _tilt(audio: NDArray[np.float32], amount: float) -> NDArray[np.float32]:
    """Mix towards the high band (amount > 0) or the low band (amount < 0) of a 3-tap split."""
    padded = np.pad(audio, 1, mode="edge")
    low = (padded[:-2] + 2.0 * padded[1:-1] + padded[2:]) / 4.0
    high = audio - low
    weight = 1.5 if amount > 0 else 0.8  # a negative amount subtracts the high band: leaning on the low one
    tilted: NDArray[np.float32] = (audio + amount * weight * high).astype(np.float32)
    return tilted
