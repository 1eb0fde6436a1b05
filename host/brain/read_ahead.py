"""Read the start of an NPC's next prompt while its reply is being spoken.

Once a turn is recorded, the prompt of the same player's next line to that NPC is known up to the line itself:
persona, examples and the exchanges so far, this one included. The model's KV cache still holds this turn's prompt
and its reply as written, which the next prompt leaves at this turn's line (its lore notes are not kept, and the
reply is stored as spoken); once the window of recent exchanges slides, it leaves it at the oldest exchange. On the
example village the inn keeper's next turns evaluated up to 120 prompt tokens that way, 300-500 ms on two cores,
all of it on the way to the first audio. Read ahead, the next turn evaluates only its own notes and line.

Only a backend that keeps prefixes in this process reads ahead (`PrefixReader`: the embedded llama.cpp); a remote
server is sent no extra requests. At most one reading per NPC is pending: a newer one replaces an older one that
has not begun.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from host.events import PlayerSaid
from host.llm.base import PrefixReader

if TYPE_CHECKING:
    from host.brain.engine import NpcBrain

log = logging.getLogger(__name__)


class NextPromptReader:
    def __init__(self, brain: NpcBrain) -> None:
        self.brain = brain
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}  # (server, NPC) -> its reading

    def after(self, said: PlayerSaid, npc_id: str) -> asyncio.Task[None]:
        """`npc_id`'s answer to `said` is recorded: read the start of that player's next prompt to it, in the
        background (the task is returned)."""
        key = (said.server, npc_id)
        older = self._pending.pop(key, None)
        if older is not None:
            older.cancel()
        task = asyncio.create_task(self._read(said, npc_id), name=f"read-ahead:{npc_id}:{said.player}")
        self._pending[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def aclose(self) -> None:
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _forget(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]

    async def _read(self, said: PlayerSaid, npc_id: str) -> None:
        try:
            npc = self.brain.registry.npc(said.server, npc_id)
            llm = self.brain.llm_for(npc)
            if not isinstance(llm, PrefixReader):
                return
            turn = await self.brain.start(said, npc_id)
            evaluated = await llm.prefill(turn.persona.prompt_start(), turn.persona.generation_options())
            log.debug("read %d prompt tokens of %s's next turn with %s ahead", evaluated, npc_id, said.player)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # only a head start: the next turn reads its prompt itself
            log.warning("could not read %s's next prompt ahead: %s: %s", npc_id, type(exc).__name__, exc)
