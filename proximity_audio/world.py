"""The shared picture of one game server: where each player and NPC stands, and NPCs' hearing/speaking ranges.

Player positions arrive from the bridge (or the game integration); NPC placements from the profiles and the
integration. Every NPC gets a small stable index, used to tag its audio frames on the bridge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from host.events import Position, Positions
from host.profiles.schema import NpcProfile
from proximity_audio.spatial import GainCurve, StereoGain, distance, stereo_gain, stereo_gains


@dataclass(frozen=True)
class NpcPlacement:
    npc: str
    index: int
    position: Position
    hearing_range: float
    speaking_range: float
    curve: GainCurve = "linear"


class SpatialWorld:
    """Positions of players and NPCs of one server. Plain in-memory state, read and written on the event loop."""

    def __init__(self) -> None:
        self._players: dict[str, Position] = {}
        self._npcs: dict[str, NpcPlacement] = {}
        self._indexes: dict[str, int] = {}

    # --- players -------------------------------------------------------------------------------------------------

    def move_player(self, player: str, position: Position) -> None:
        self._players[player] = position

    def remove_player(self, player: str, *, only_if_at: Position | None = None) -> None:
        """Forget a player; with `only_if_at`, only if nobody moved them since (a rejoin or another connection)."""
        if only_if_at is None or self._players.get(player) is only_if_at:
            self._players.pop(player, None)

    def player(self, player: str) -> Position | None:
        return self._players.get(player)

    @property
    def players(self) -> dict[str, Position]:
        return dict(self._players)

    # --- NPCs ----------------------------------------------------------------------------------------------------

    def place_npc(
        self,
        npc: str,
        position: Position,
        *,
        hearing_range: float = 8.0,
        speaking_range: float = 16.0,
        curve: GainCurve = "linear",
    ) -> NpcPlacement:
        """Add or move an NPC; its index stays the same for the life of this world."""
        if hearing_range <= 0 or speaking_range <= 0:
            raise ValueError(f"NPC {npc!r}: hearing and speaking ranges must be positive")
        index = self._indexes.setdefault(npc, len(self._indexes))
        placement = NpcPlacement(npc, index, position, hearing_range, speaking_range, curve)
        self._npcs[npc] = placement
        return placement

    def place_profile(self, profile: NpcProfile) -> NpcPlacement:
        """Place an NPC where its profile puts it, with the profile's hearing and speaking ranges."""
        spot = profile.world
        where = Position(
            x=spot.position.x, y=spot.position.y, z=spot.position.z, yaw=spot.yaw, dimension=spot.dimension
        )
        return self.place_npc(profile.id, where, hearing_range=spot.hearing_range, speaking_range=spot.speaking_range)

    def apply(self, positions: Positions) -> None:
        """Take a `Positions` event from the game integration: players move; known NPCs move and keep their ranges."""
        for entity in positions.entities:
            where = Position(x=entity.x, y=entity.y, z=entity.z, yaw=entity.yaw, dimension=entity.dimension)
            if entity.kind == "player":
                self.move_player(entity.name, where)
            elif (placement := self._npcs.get(entity.name)) is not None:
                self.place_npc(
                    entity.name,
                    where,
                    hearing_range=placement.hearing_range,
                    speaking_range=placement.speaking_range,
                    curve=placement.curve,
                )

    def remove_npc(self, npc: str) -> None:
        self._npcs.pop(npc, None)

    def npc(self, npc: str) -> NpcPlacement | None:
        return self._npcs.get(npc)

    @property
    def npcs(self) -> list[NpcPlacement]:
        return list(self._npcs.values())

    # --- who hears whom ------------------------------------------------------------------------------------------

    def npcs_hearing(self, player: str) -> list[str]:
        """NPCs whose hearing range contains the player, nearest first; none when the player's position is unknown."""
        where = self._players.get(player)
        if where is None:
            return []
        in_range = [
            (dist, placement.npc)
            for placement in self._npcs.values()
            if (dist := distance(placement.position, where)) < placement.hearing_range
        ]
        return [npc for _, npc in sorted(in_range)]

    def gain_for(self, player: str, npc: str) -> StereoGain | None:
        """How `player` hears `npc`; None when either is unknown or the player is out of the speaking range."""
        where, placement = self._players.get(player), self._npcs.get(npc)
        if where is None or placement is None:
            return None
        gain = stereo_gain(where, placement.position, placement.speaking_range, placement.curve)
        return gain if gain.audible else None

    def gain_matrix(self, listeners: Sequence[str], npcs: Sequence[str]) -> NDArray[np.float32]:
        """`gain_for` of every listener x NPC at once, (n_listeners, n_npcs, 2); unknown ones are silent."""
        gains = np.zeros((len(listeners), len(npcs), 2), dtype=np.float32)
        rows = [i for i, name in enumerate(listeners) if name in self._players]
        cols = [j for j, npc in enumerate(npcs) if npc in self._npcs]
        if rows and cols:
            placements = [self._npcs[npcs[j]] for j in cols]
            gains[np.ix_(rows, cols)] = stereo_gains(
                [self._players[listeners[i]] for i in rows],
                [p.position for p in placements],
                [p.speaking_range for p in placements],
                [p.curve for p in placements],
            )
        return gains
