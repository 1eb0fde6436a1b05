"""Mixer output levels: distance gain, pan side, several NPCs, clipping, and listeners who hear nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from host.events import Position
from host.speech.audio import Int16Array
from proximity_audio.mixer import mix, mix_for_listeners
from proximity_audio.protocol import FRAME_SAMPLES
from proximity_audio.world import SpatialWorld


def at(x: float, z: float, yaw: float = 0.0) -> Position:
    return Position(x=x, y=64, z=z, yaw=yaw)


def tone(amplitude: int) -> Int16Array:
    t = np.arange(FRAME_SAMPLES) / 48_000
    samples: Int16Array = np.rint(amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return samples


def peak(samples: np.ndarray) -> float:
    return float(np.abs(samples.astype(np.float64)).max())


@pytest.fixture
def world() -> SpatialWorld:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    return world


def test_levels_follow_distance_and_pan(world: SpatialWorld) -> None:
    world.move_player("Ahead", at(0, -8, yaw=0))  # 8 blocks north of Bram, facing him: centred, gain 0.5
    world.move_player("Right", at(4, 0, yaw=0))  # Bram is 4 blocks west; facing south, west is on the right
    out = mix_for_listeners(world, ["Ahead", "Right"], {"bram": tone(20_000)})
    ahead, right = out["Ahead"], out["Right"]
    assert ahead.shape == (FRAME_SAMPLES, 2) and ahead.dtype == np.int16
    centre = 20_000 * 0.5 * math.sqrt(0.5)
    assert peak(ahead[:, 0]) == pytest.approx(centre, rel=0.01)
    assert peak(ahead[:, 1]) == pytest.approx(centre, rel=0.01)
    assert peak(right[:, 1]) == pytest.approx(20_000 * 0.75, rel=0.01)
    assert peak(right[:, 0]) < 1.0


def test_listeners_out_of_range_or_unknown_get_nothing(world: SpatialWorld) -> None:
    world.move_player("Far", at(0, 30))
    assert mix_for_listeners(world, ["Far", "Ghost"], {"bram": tone(10_000)}) == {}
    assert mix_for_listeners(world, ["Far"], {}) == {}


def test_two_npcs_add_up_and_loud_sums_clip_instead_of_wrapping(world: SpatialWorld) -> None:
    world.place_npc("hilde", at(0, 0), hearing_range=8, speaking_range=16)
    world.move_player("Alice", at(0, 0))
    out = mix_for_listeners(world, ["Alice"], {"bram": tone(30_000), "hilde": tone(30_000)})["Alice"]
    assert out.max() == 32767 and out.min() == -32768
    quiet = mix_for_listeners(world, ["Alice"], {"bram": tone(4_000), "hilde": tone(4_000)})["Alice"]
    assert peak(quiet[:, 0]) == pytest.approx(8_000 * math.sqrt(0.5), rel=0.01)


def test_mix_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="cannot mix"):
        mix(np.zeros((2, FRAME_SAMPLES), np.int16), np.zeros((1, 3, 2), np.float32))
