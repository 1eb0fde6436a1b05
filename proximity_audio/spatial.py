"""Who hears whom, and how loud from which side: positions, ranges, distance gain and constant-power pan.

Coordinates are Minecraft's: +X east, +Y up, +Z south. Yaw is the direction a player faces, in degrees:
0 faces +Z (south), 90 faces -X (west), 180 north, 270 (or -90) east. A sound never crosses dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from host.events import Position

GainCurve = Literal["linear", "inverse", "exponential"]

# Inverse-distance gain is full up to this distance (one block), then falls as REFERENCE / distance.
INVERSE_REFERENCE = 1.0
# Exponential gain reaches e^-3 (about -26 dB) at the edge of the range, then drops to silence.
EXPONENTIAL_FALLOFF = 3.0


def same_dimension(a: Position, b: Position) -> bool:
    return a.dimension == b.dimension


def distance(a: Position, b: Position) -> float:
    """Euclidean distance in blocks; infinite across dimensions."""
    if not same_dimension(a, b):
        return math.inf
    return math.dist((a.x, a.y, a.z), (b.x, b.y, b.z))


def distance_gain(dist: float, max_range: float, curve: GainCurve = "linear") -> float:
    """Amplitude factor in [0, 1] for a sound heard `dist` blocks away; 0 at or beyond `max_range`.

    `linear` fades evenly to silence at the range edge, as Simple Voice Chat does; `inverse` follows the
    physical 1/distance law; `exponential` keeps close voices loud and falls off quickly.
    """
    if max_range <= 0:
        raise ValueError("max_range must be positive")
    if dist >= max_range:
        return 0.0
    if curve == "linear":
        return 1.0 - dist / max_range
    if curve == "inverse":
        return INVERSE_REFERENCE / max(dist, INVERSE_REFERENCE)
    return math.exp(-EXPONENTIAL_FALLOFF * dist / max_range)


def pan(listener: Position, source: Position) -> float:
    """Stereo position of `source` for `listener`: -1 fully left, 0 centre (ahead, behind, above), +1 fully right.

    The listener's right-hand vector for yaw θ is (-cos θ, 0, -sin θ): facing south (θ = 0) the right hand
    points west (-X); facing west (θ = 90) it points north (-Z).
    """
    dx, dz = source.x - listener.x, source.z - listener.z
    horizontal = math.hypot(dx, dz)
    if horizontal < 1e-9:
        return 0.0
    yaw = math.radians(listener.yaw)
    right_x, right_z = -math.cos(yaw), -math.sin(yaw)
    return max(-1.0, min(1.0, (dx * right_x + dz * right_z) / horizontal))


def constant_power(pan_value: float) -> tuple[float, float]:
    """(left, right) gains for a pan in [-1, 1] with constant total power: left² + right² = 1."""
    angle = (max(-1.0, min(1.0, pan_value)) + 1.0) * math.pi / 4.0
    return math.cos(angle), math.sin(angle)


@dataclass(frozen=True)
class StereoGain:
    left: float
    right: float

    @property
    def audible(self) -> bool:
        return self.left > 0.0 or self.right > 0.0


SILENT = StereoGain(0.0, 0.0)


def stereo_gain(listener: Position, source: Position, max_range: float, curve: GainCurve = "linear") -> StereoGain:
    """Per-ear amplitude of `source` for `listener`: distance gain times constant-power pan."""
    gain = distance_gain(distance(listener, source), max_range, curve)
    if gain <= 0.0:
        return SILENT
    left, right = constant_power(pan(listener, source))
    return StereoGain(gain * left, gain * right)


def stereo_gains(
    listeners: Sequence[Position], sources: Sequence[Position], ranges: Sequence[float], curves: Sequence[GainCurve]
) -> NDArray[np.float32]:
    """`stereo_gain` for every listener x source pair at once: (n_listeners, n_sources, 2 ears), float32.

    The bridge mixes every 20 ms for every player; doing this in numpy keeps it a few microseconds per pair.
    """
    if not listeners or not sources:
        return np.zeros((len(listeners), len(sources), 2), dtype=np.float32)
    here = np.array([(p.x, p.y, p.z) for p in listeners], dtype=np.float64)
    there = np.array([(p.x, p.y, p.z) for p in sources], dtype=np.float64)
    offset = there[None, :, :] - here[:, None, :]
    dist = np.linalg.norm(offset, axis=2)
    reach = np.asarray(ranges, dtype=np.float64)[None, :]
    curve = np.asarray(curves)[None, :]
    gain = np.where(
        curve == "linear",
        1.0 - dist / reach,
        np.where(
            curve == "inverse",
            INVERSE_REFERENCE / np.maximum(dist, INVERSE_REFERENCE),
            np.exp(-EXPONENTIAL_FALLOFF * dist / reach),
        ),
    )
    same = np.array([p.dimension for p in listeners])[:, None] == np.array([p.dimension for p in sources])[None, :]
    gain = np.where(same & (dist < reach), gain, 0.0)
    yaw = np.radians([p.yaw for p in listeners])[:, None]
    horizontal = np.hypot(offset[:, :, 0], offset[:, :, 2])
    towards_right = offset[:, :, 0] * -np.cos(yaw) + offset[:, :, 2] * -np.sin(yaw)
    pan_values = np.clip(np.divide(towards_right, horizontal, out=np.zeros_like(dist), where=horizontal > 1e-9), -1, 1)
    angle = (pan_values + 1.0) * np.pi / 4.0
    return np.stack((gain * np.cos(angle), gain * np.sin(angle)), axis=2).astype(np.float32)
