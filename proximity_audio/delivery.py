"""What one plugin receives from a pacer tick: NPC source frames (`source` mode) or per-player mixes (`mixed`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from host.speech.audio import int16_to_pcm16
from proximity_audio.mixer import mix_for_listeners
from proximity_audio.pacer import PacedTick
from proximity_audio.protocol import FrameKind, encode_frame
from proximity_audio.world import SpatialWorld


@dataclass(kw_only=True)
class Listener:
    """A player of one plugin connection; `out_sequence` numbers the mixed frames sent to them."""

    index: int
    name: str
    out_sequence: int = 0


def source_frames(world: SpatialWorld, listeners: Sequence[Listener], tick: PacedTick) -> list[bytes]:
    """One mono frame per sounding NPC that at least one of `listeners` is within speaking range of."""
    npcs = [npc for npc in tick.frames if world.npc(npc) is not None]
    gains = world.gain_matrix([listener.name for listener in listeners], npcs)
    frames = []
    for column, npc in enumerate(npcs):
        placement, paced = world.npc(npc), tick.frames[npc]
        if placement is not None and np.any(gains[:, column]):
            pcm = int16_to_pcm16(paced.samples)
            frames.append(encode_frame(FrameKind.NPC_SOURCE, placement.index, paced.sequence, pcm))
    return frames


def mixed_frames(world: SpatialWorld, listeners: Sequence[Listener], tick: PacedTick) -> list[bytes]:
    """One stereo frame per listener who hears at least one sounding NPC, with gain and pan applied."""
    by_name = {listener.name: listener for listener in listeners}
    sounds = {npc: paced.samples for npc, paced in tick.frames.items()}
    frames = []
    for name, stereo in mix_for_listeners(world, by_name, sounds).items():
        listener = by_name[name]
        frames.append(encode_frame(FrameKind.MIXED, listener.index, listener.out_sequence, int16_to_pcm16(stereo)))
        listener.out_sequence += 1
    return frames


def batches(frames: Sequence[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Group frames into messages of at most `max_bytes` (a single frame always fits: the limit is >= 4 KiB)."""
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        if batch and size + len(frame) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(frame)
        size += len(frame)
    if batch:
        yield batch
