"""Which NPC names a speaker is likely to say: Whisper's vocabulary for one utterance (docs/speech.md)."""

from __future__ import annotations

from collections.abc import Iterable

from host.brain.addressing import address
from host.events import PlayerSaid, Position
from host.profiles.schema import NpcProfile


def names_in_earshot(npcs: Iterable[NpcProfile], server: str, player: str, position: Position | None) -> list[str]:
    """Names of the NPCs whose hearing range reaches the speaker, nearest first; every NPC's name when the speaker's
    position is unknown (the list only biases spelling, so a few extra names cost nothing)."""
    by_id = {npc.id: npc for npc in npcs}
    if position is None:
        return [npc.name for npc in by_id.values()]
    # The same hearing rule the brain uses to decide who answers, applied to a line not yet transcribed.
    hearers = address(PlayerSaid(server=server, player=player, text="", position=position), list(by_id.values()))
    return [by_id[npc_id].name for npc_id in hearers.hearers]
