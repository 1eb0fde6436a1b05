"""Gain and pan tables: which side a voice comes from for Minecraft yaws, distance curves, ranges and dimensions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from host.events import EntityPosition, Position, Positions
from host.profiles.schema import NpcProfile
from proximity_audio.spatial import GainCurve, constant_power, distance_gain, pan, stereo_gain, stereo_gains
from proximity_audio.world import SpatialWorld


def at(x: float, z: float, *, yaw: float = 0.0, y: float = 64.0, dimension: str = "minecraft:overworld") -> Position:
    return Position(x=x, y=y, z=z, yaw=yaw, dimension=dimension)


# (listener yaw, where the sound is relative to the listener, expected pan). Minecraft: +X east, +Z south;
# yaw 0 faces south, 90 west, 180 north, -90 (= 270) east.
PAN_CASES = [
    (0, (-5, 0), 1.0),  # facing south, west is on the right
    (0, (5, 0), -1.0),  # facing south, east is on the left
    (0, (0, 5), 0.0),  # straight ahead
    (0, (0, -5), 0.0),  # straight behind
    (90, (0, -5), 1.0),  # facing west, north is on the right
    (90, (0, 5), -1.0),
    (180, (5, 0), 1.0),  # facing north, east is on the right
    (180, (-5, 0), -1.0),
    (-90, (0, 5), 1.0),  # facing east, south is on the right
    (270, (0, 5), 1.0),  # the same yaw written the other way
    (0, (-5, 5), math.sqrt(0.5)),  # ahead and to the right: half-way right
]


@pytest.mark.parametrize(("yaw", "offset", "expected"), PAN_CASES)
def test_pan_side_follows_minecraft_yaw(yaw: float, offset: tuple[float, float], expected: float) -> None:
    assert pan(at(10, 20, yaw=yaw), at(10 + offset[0], 20 + offset[1])) == pytest.approx(expected, abs=1e-9)


def test_sound_on_the_right_is_louder_in_the_right_ear() -> None:
    gain = stereo_gain(at(0, 0, yaw=0), at(-4, 0), max_range=16)
    assert gain.right > 0.7 and gain.left == pytest.approx(0.0, abs=1e-9)
    mirrored = stereo_gain(at(0, 0, yaw=0), at(4, 0), max_range=16)
    assert mirrored.left == pytest.approx(gain.right) and mirrored.right == pytest.approx(gain.left, abs=1e-9)


def test_sound_directly_above_is_centred() -> None:
    assert pan(at(0, 0, yaw=37), at(0, 0, y=70)) == 0.0


@pytest.mark.parametrize("value", [-1.0, -0.5, 0.0, 0.3, 1.0])
def test_constant_power_pan_keeps_total_power(value: float) -> None:
    left, right = constant_power(value)
    assert left**2 + right**2 == pytest.approx(1.0)


def test_centre_pan_splits_equally_at_minus_3_db() -> None:
    left, right = constant_power(0.0)
    assert left == pytest.approx(right) == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize(
    ("dist", "expected"), [(0.0, 1.0), (4.0, 0.75), (8.0, 0.5), (15.99, 0.000625), (16.0, 0.0), (40.0, 0.0)]
)
def test_linear_gain_fades_to_silence_at_the_range(dist: float, expected: float) -> None:
    assert distance_gain(dist, 16.0) == pytest.approx(expected)


@pytest.mark.parametrize("curve", ["linear", "inverse", "exponential"])
def test_every_curve_falls_with_distance_and_is_silent_beyond_the_range(curve: str) -> None:
    gains = [distance_gain(d, 16.0, curve) for d in (0.0, 2.0, 5.0, 10.0, 15.0)]  # type: ignore[arg-type]
    assert gains[0] == 1.0
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0
    assert distance_gain(16.0, 16.0, curve) == 0.0  # type: ignore[arg-type]


def test_inverse_curve_halves_amplitude_when_distance_doubles() -> None:
    assert distance_gain(8.0, 32.0, "inverse") == pytest.approx(distance_gain(4.0, 32.0, "inverse") / 2)


def test_no_sound_across_dimensions() -> None:
    nether = at(0, 0, dimension="minecraft:the_nether")
    assert not stereo_gain(at(0, 0), nether, max_range=16).audible


def test_world_hearing_range_edge_and_nearest_first() -> None:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    world.place_npc("hilde", at(3, 0), hearing_range=8, speaking_range=16)
    world.move_player("Alice", at(2, 0))
    assert world.npcs_hearing("Alice") == ["hilde", "bram"]
    world.move_player("Alice", at(-7.9, 0))
    assert world.npcs_hearing("Alice") == ["bram"]
    world.move_player("Alice", at(-8.0, 0))  # exactly on the edge: outside
    assert world.npcs_hearing("Alice") == []
    world.move_player("Alice", at(0, 0, dimension="minecraft:the_end"))
    assert world.npcs_hearing("Alice") == []
    assert world.npcs_hearing("Nobody") == []


def test_world_speaking_range_decides_who_hears_an_npc() -> None:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    world.move_player("Near", at(0, 4))
    world.move_player("Far", at(0, 20))
    near = world.gain_for("Near", "bram")
    assert near is not None and near.left == pytest.approx(0.75 * math.sqrt(0.5))
    assert world.gain_for("Far", "bram") is None


def test_npc_index_is_stable_when_an_npc_moves() -> None:
    world = SpatialWorld()
    first = world.place_npc("bram", at(0, 0))
    world.place_npc("hilde", at(5, 0))
    assert world.place_npc("bram", at(1, 1)).index == first.index
    with pytest.raises(ValueError, match="ranges must be positive"):
        world.place_npc("ghost", at(0, 0), hearing_range=0)


def test_gains_for_many_pairs_at_once_match_the_single_pair_formula() -> None:
    rng = np.random.default_rng(1)
    dims = ["minecraft:overworld", "minecraft:the_nether"]
    curves: list[GainCurve] = ["linear", "inverse", "exponential"]
    listeners = [
        at(*rng.uniform(-20, 20, 2), yaw=float(rng.uniform(-360, 360)), dimension=dims[int(rng.integers(0, 10) == 0)])
        for _ in range(40)
    ]
    sources = [at(*rng.uniform(-20, 20, 2), y=float(rng.uniform(60, 70))) for _ in range(6)] + [listeners[0]]
    ranges = [float(r) for r in rng.uniform(4, 30, len(sources))]
    kinds = [curves[i % 3] for i in range(len(sources))]
    table = stereo_gains(listeners, sources, ranges, kinds)
    for i, listener in enumerate(listeners):
        for j, source in enumerate(sources):
            one = stereo_gain(listener, source, ranges[j], kinds[j])
            assert table[i, j] == pytest.approx([one.left, one.right], abs=1e-6)


def test_npcs_come_from_profiles_and_positions_events_move_everyone() -> None:
    profile = NpcProfile.model_validate(
        {
            "id": "bram",
            "name": "Bram",
            "persona": {"description": "An innkeeper."},
            "world": {"position": {"x": 10, "y": 64, "z": 5}, "hearing_range": 6, "speaking_range": 20},
        }
    )
    world = SpatialWorld()
    placement = world.place_profile(profile)
    assert (placement.position, placement.hearing_range, placement.speaking_range) == (at(10, 5), 6.0, 20.0)
    world.apply(
        Positions(
            server="survival",
            entities=[
                EntityPosition(name="Alice", x=12, y=64, z=5, yaw=90),
                EntityPosition(name="bram", kind="npc", x=0, y=64, z=0),
                EntityPosition(name="stranger", kind="npc", x=1, y=64, z=1),
            ],
        )
    )
    assert world.player("Alice") == at(12, 5, yaw=90)
    moved = world.npc("bram")
    assert moved is not None and moved.position == at(0, 0) and moved.hearing_range == 6.0
    assert world.npc("stranger") is None  # NPCs are placed from profiles, not created by position reports
