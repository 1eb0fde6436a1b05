"""NPC bodies in the world: summoned at start, removed at stop, summoned again after every server restart.

Every body carries the tags `npc_host` and `npc_host.<id>`. Each summon is preceded by a `kill` of that tag, so a host
that restarts (or crashed without removing its bodies) never leaves a duplicate standing next to the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from host.events import Position
from host.profiles.schema import NpcProfile
from integrations.minecraft import commands
from integrations.minecraft.rcon import CommandRunner, RconClient
from integrations.minecraft.replies import CommandRejectedError, run_checked

log = logging.getLogger(__name__)

PLAYER_EYE_HEIGHT = 1.62
_GONE = frozenset({"no_entity"})  # a `kill` of a body that is not there (first start, or removed by hand)


def body_position(npc: NpcProfile) -> Position:
    """Where the NPC's profile places it."""
    world = npc.world
    return Position(
        x=world.position.x, y=world.position.y, z=world.position.z, yaw=world.yaw, dimension=world.dimension
    )


class NpcBodies:
    """The bodies of one server's NPCs. `json_in_string=False` for servers on 1.21.5 or newer (SNBT text)."""

    def __init__(self, rcon: RconClient, npcs: Sequence[NpcProfile], *, json_in_string: bool = True) -> None:
        self.rcon = rcon
        self.npcs = [npc for npc in npcs if npc.world.body != "none"]
        self.json_in_string = json_in_string
        self.positions = {npc.id: body_position(npc) for npc in self.npcs}
        for npc in self.npcs:
            self._summon(npc)  # a bad name, id or position is an error now, not on every reconnect

    @property
    def ids(self) -> frozenset[str]:
        """The NPCs that have a body (not `body = "none"`)."""
        return frozenset(npc.id for npc in self.npcs)

    async def start(self) -> None:
        self.rcon.add_connect_hook(self._summon_all)
        if not await self.rcon.connect():  # already connected: the hook did not run
            await self._summon_all(self.rcon.command)

    async def stop(self) -> None:
        self.rcon.remove_connect_hook(self._summon_all)
        for npc in self.npcs:
            await run_checked(self.rcon.command, "kill", commands.kill_body(npc.id), expected=_GONE)

    async def face(self, npc_id: str, player: Position) -> None:
        """Turn the NPC towards a player's eyes."""
        await run_checked(
            self.rcon.command, "face", commands.face(npc_id, player.x, player.y + PLAYER_EYE_HEIGHT, player.z)
        )

    async def move(self, npc_id: str, to: Position) -> None:
        """Move a body; it is summoned there (not at its profile position) after a server restart."""
        await run_checked(self.rcon.command, "tp", commands.teleport_body(npc_id, to))
        self.positions[npc_id] = to

    async def _summon_all(self, run: CommandRunner) -> None:
        summoned = 0
        for npc in self.npcs:
            try:
                await run_checked(run, "kill", commands.kill_body(npc.id), expected=_GONE)
                await run_checked(run, "summon", self._summon(npc))
            except CommandRejectedError:
                continue  # counted and logged; the other bodies still come
            summoned += 1
        if summoned < len(self.npcs):
            log.warning("summoned %d of %d NPC bodies on %s", summoned, len(self.npcs), self.rcon.address)
        else:
            log.info("summoned %d NPC bodies on %s", summoned, self.rcon.address)

    def _summon(self, npc: NpcProfile) -> str:
        at = self.positions[npc.id]
        try:
            return commands.summon_body(npc.id, npc.name, npc.world.body, at, json_in_string=self.json_in_string)
        except commands.CommandArgumentError as exc:
            raise commands.CommandArgumentError(f"NPC '{npc.id}' cannot have a body: {exc.message}") from None
