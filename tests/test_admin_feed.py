"""What the operator's page shows of each NPC: a turn cut before its first word (it never ends) leaves the NPC no
longer talking, as a turn that ended does."""

from __future__ import annotations

from host.admin.feed import LiveFeed
from host.bus.memory import MemoryBus
from host.events import NpcTurnCut, NpcTurnStarted


async def test_a_cut_turn_leaves_its_npc_not_talking() -> None:
    feed = LiveFeed(MemoryBus(), ["village"])
    await feed.on_event(NpcTurnStarted(server="village", npc="bram", player="Alice", turn_id="t1", cause_id="c1"))
    assert feed.npc("village", "bram").talking_to == "Alice"
    await feed.on_event(
        NpcTurnCut(server="village", npc="bram", player="Alice", turn_id="t1", heard="", sentences_heard=0)
    )
    assert feed.npc("village", "bram").talking_to is None
