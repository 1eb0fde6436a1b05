"""Keep every NPC's persona prefix warm before the first player speaks.

The persona block opens every prompt and never changes (docs/prompt.md), and the embedded backend keeps one KV
snapshot per NPC (`NpcPrefixCache`, keyed by server/NPC). A throwaway turn per NPC, stopped at its first sentence
and never recorded, puts that snapshot in place: the first real turn of each NPC then reads only the few dozen
tokens after its persona instead of the whole prompt (about 1 s on two cores for SmolLM2). Remote
backends (Ollama, OpenAI-compatible) get the same call, which loads the model and fills their own prompt caches.
"""

from __future__ import annotations

import contextlib
import logging
import time

from host.brain.engine import NpcBrain
from host.brain.turn import TurnSentence
from host.events import PlayerSaid

log = logging.getLogger(__name__)

WARMUP_PLAYER = "Traveler"
WARMUP_LINE = "Hello there."


async def warm_personas(brain: NpcBrain, server: str, *, embedded_only: bool = False) -> dict[str, float]:
    """Warm each NPC of `server` in turn; returns the milliseconds each took (the cold cost now paid up front).
    `embedded_only` skips NPCs on remote backends, whose servers keep their own caches warm across requests."""
    spent: dict[str, float] = {}
    npc_ids = [
        npc_id
        for npc_id, npc in brain.registry.npcs(server).items()
        if not embedded_only or brain.llm_for(npc).name == "embedded"  # by name: llama.cpp may not be installed
    ]
    if npc_ids:
        log.info("warming the persona prefixes of %d NPC(s) of '%s'", len(npc_ids), server)
    for npc_id in npc_ids:
        started = time.perf_counter()
        turn = await brain.start(PlayerSaid(server=server, player=WARMUP_PLAYER, text=WARMUP_LINE), npc_id)
        # Closing the stream at the first sentence stops generation; the backend keeps the prefix it read.
        async with contextlib.aclosing(turn.persona.stream()) as events:
            async for event in events:
                if isinstance(event, TurnSentence):
                    break
        spent[npc_id] = (time.perf_counter() - started) * 1000.0
    return spent
