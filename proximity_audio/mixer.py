"""Per-listener stereo mixing: every player hears the sum of the NPC frames in range, each with its gain and pan.

One 20 ms tick mixes all listeners at once as a matrix product (listeners x sources x ears), so 50 players and
10 talking NPCs cost one small numpy call instead of 500 Python-level multiplications.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from host.speech.audio import Int16Array
from proximity_audio.world import SpatialWorld


def mix(sources: NDArray[np.int16], gains: NDArray[np.float32]) -> NDArray[np.int16]:
    """Mix mono `sources` (n_sources, samples) with `gains` (n_listeners, n_sources, 2 ears).

    Returns interleavable stereo (n_listeners, samples, 2) as int16; sums louder than full scale are clipped,
    never wrapped.
    """
    if sources.ndim != 2 or gains.ndim != 3 or gains.shape[1] != sources.shape[0] or gains.shape[2] != 2:
        raise ValueError(f"cannot mix sources {sources.shape} with gains {gains.shape}")
    source_rows = sources.astype(np.float32)
    mixed = np.stack((gains[:, :, 0] @ source_rows, gains[:, :, 1] @ source_rows), axis=2)
    out: NDArray[np.int16] = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
    return out


def mix_for_listeners(
    world: SpatialWorld, listeners: Iterable[str], frames: Mapping[str, Int16Array]
) -> dict[str, Int16Array]:
    """Stereo frame (samples, 2) for each listener who hears at least one of the NPC `frames`; others are left out."""
    npcs = list(frames)
    names = list(listeners)
    if not npcs or not names:
        return {}
    gains = world.gain_matrix(names, npcs)
    audible = np.flatnonzero(gains.any(axis=(1, 2)))
    if not len(audible):
        return {}
    mixed = mix(np.stack([frames[npc] for npc in npcs]), gains[audible])
    return {names[row]: stereo for row, stereo in zip(audible, mixed, strict=True)}
