"""Who hears a player's line and who answers it (DESIGN.md, "The turn", step 2). Pure functions, no I/O.

Hearers: NPCs in the speaker's dimension whose hearing range reaches the speaker, nearest first. Responders, in the
order they should take turns:
1. the NPCs named in the line (name or alias, whole word, case-insensitive) that hear it, nearest first;
2. else the player's last partner, if it hears the line;
3. else the nearest hearer.
A line that names NPCs none of which hear it gets no answer: it was meant for someone out of earshot.
A line without a position (terminal chat) is heard by, and answered by, the NPCs it names, else the last partner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from host.events import PlayerSaid, Position
from host.profiles.schema import NpcProfile


@dataclass(frozen=True, slots=True)
class Addressing:
    hearers: tuple[str, ...]  # NPC ids, nearest first
    responders: tuple[str, ...]  # NPC ids in speaking order; empty when nobody answers


@cache
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(r"\s+".join(map(re.escape, name.split())) for name in names if name.strip())
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def is_named(text: str, npc: NpcProfile) -> bool:
    """True when `text` calls the NPC by its name or an alias, as a whole word in any case."""
    names = tuple(sorted({npc.name, *npc.aliases}, key=len, reverse=True))
    return _name_pattern(names).search(text) is not None


def _distance(position: Position, npc: NpcProfile) -> float:
    spot = npc.world.position
    return math.dist((position.x, position.y, position.z), (spot.x, spot.y, spot.z))


def address(said: PlayerSaid, npcs: Sequence[NpcProfile], last_partner: str | None = None) -> Addressing:
    named = [npc for npc in npcs if is_named(said.text, npc)]
    position = said.position
    if position is None:
        partner = [npc.id for npc in npcs if npc.id == last_partner]
        chosen = tuple(npc.id for npc in named) or tuple(partner)
        return Addressing(hearers=chosen, responders=chosen)

    distances = {
        npc.id: distance
        for npc in npcs
        if npc.world.dimension == position.dimension
        and (distance := _distance(position, npc)) <= npc.world.hearing_range
    }
    hearers = tuple(sorted(distances, key=distances.__getitem__))
    if named:
        return Addressing(hearers, tuple(npc_id for npc_id in hearers if npc_id in {npc.id for npc in named}))
    if last_partner is not None and last_partner in distances:
        return Addressing(hearers, (last_partner,))
    return Addressing(hearers, hearers[:1])
