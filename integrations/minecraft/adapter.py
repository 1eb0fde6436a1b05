"""The Minecraft `GameAdapter`: RCON, NPC bodies, positions and chat capture for one server.

Produces `PlayerSaid` (chat, with the speaker's last polled position), `Positions`, and for operators' `!npc` lines
`NpcControl` / `AdminNote`. Consumes `NpcTurnStarted` (the NPC turns to the player), `NpcSentence` (chat-style
`tellraw` to the players within the NPC's speaking range) and `NpcControl` moves. Deciding who answers is the
brain's job (host/brain/addressing.py), not the adapter's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from host.config import Settings
from host.errors import NpcHostError
from host.events import (
    AdminNote,
    EntityPosition,
    Event,
    NpcControl,
    NpcSentence,
    NpcTurnStarted,
    PlayerSaid,
    Position,
    Positions,
)
from host.invites import InviteSigner, invite_secret
from host.profiles.schema import NpcProfile, ServerProfile
from integrations.base import GameAdapter, Publish
from integrations.minecraft import commands
from integrations.minecraft.admin_commands import (
    AdminCommandError,
    AdminRefusedError,
    ListNpcs,
    NoteNpc,
    PauseNpc,
    Reload,
    ResumeNpc,
    SayNpc,
    TeleportNpcHere,
    is_admin_command,
    parse_admin_command,
)
from integrations.minecraft.bodies import NpcBodies, body_position
from integrations.minecraft.connection import rcon_client
from integrations.minecraft.log_formats import ChatLine, PlayerJoined
from integrations.minecraft.log_tail import LogTail
from integrations.minecraft.positions import PositionPoller
from integrations.minecraft.rcon import RconError, RconUnavailableError
from integrations.minecraft.voice_invites import is_voice_command, voice_invite

log = logging.getLogger(__name__)

ALL_NPCS = "*"  # NpcControl.npc of a `reload`, which concerns every NPC of the server


class MinecraftAdapter(GameAdapter):
    consumes = frozenset({"npc_turn_started", "npc_sentence", "npc_control"})
    produces = frozenset({"player_said", "positions", "npc_control", "admin_note"})

    def __init__(
        self,
        server: ServerProfile,
        npcs: Sequence[NpcProfile],
        settings: Settings,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        super().__init__(server, npcs, settings, environ)
        tuning = settings.minecraft
        self.rcon = rcon_client(
            server, environ, timeout_s=tuning.rcon_timeout_s, backoff_max_s=tuning.rcon_backoff_max_s
        )
        self.profiles = {npc.id: npc for npc in npcs}
        self.npc_positions = {npc.id: body_position(npc) for npc in npcs}
        self.bodies = NpcBodies(self.rcon, npcs, json_in_string=not tuning.snbt_text)
        self.poller = PositionPoller(server.name, self.rcon, interval_s=tuning.positions_interval_s)
        self.log_poll_interval_s = tuning.log_poll_interval_s
        self.invites = InviteSigner(invite_secret(settings.voice_page.invite_secret))
        self.players: dict[str, Position] = {}
        self._publish: Publish | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self, publish: Publish) -> None:
        self._publish = publish
        self._refresh_npc_positions()
        try:
            await self.bodies.start()  # a wrong password or protocol error propagates: that is configuration
        except RconUnavailableError as exc:
            # Not ready is expected (server still starting): the bodies appear on the first successful connection.
            log.warning("%s; NPC bodies will be summoned when it answers", exc)
        self._spawn(self.poller.run(self._on_positions), "positions")
        if self.server.log_path:
            tail = LogTail(Path(self.server.log_path), poll_interval_s=self.log_poll_interval_s)
            await tail.open()
            self._spawn(self._capture_chat(tail), "chat")
        else:
            log.warning("server '%s' has no log_path: chat is not captured", self.server.name)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.bodies.stop()
        except RconError as exc:
            log.warning("NPC bodies not removed: %s", exc)
        await self.rcon.close()

    async def handle(self, event: Event) -> None:
        if event.server != self.server.name:
            return
        try:
            await self._act(event)
        except RconError as exc:
            # Game text is only worth something now; the transcript keeps what the NPC said either way.
            log.warning("could not act out %s in %s: %s", event.type, self.server.name, exc)

    async def on_chat(self, player: str, text: str) -> None:
        """One chat line from the log: an admin command, or something a player said near (or to) the NPCs."""
        if is_admin_command(text):
            await self._admin(player, text)
            return
        if is_voice_command(text):  # the link is the player's alone: never chat the NPCs hear
            await self._invite(player)
            return
        await self._emit(
            PlayerSaid(server=self.server.name, player=player, text=text, position=self.players.get(player))
        )

    async def _act(self, event: Event) -> None:
        if isinstance(event, NpcSentence) and event.npc in self.profiles:
            npc = self.profiles[event.npc]
            for command in commands.tellraw_nearby(
                npc.name, event.text, self.npc_positions[npc.id], npc.world.speaking_range
            ):
                await self.rcon.command(command)
        elif isinstance(event, NpcTurnStarted) and event.npc in self.bodies.ids:
            player = self.players.get(event.player)
            if player is not None:
                await self.bodies.face(event.npc, player)
        elif isinstance(event, NpcControl) and event.action == "move" and event.position is not None:
            await self._move(event.npc, event.position)

    async def _move(self, npc_id: str, to: Position) -> None:
        if npc_id not in self.profiles:
            return
        if npc_id in self.bodies.ids:
            await self.bodies.move(npc_id, to)
        self.npc_positions[npc_id] = to
        self._refresh_npc_positions()

    async def _admin(self, player: str, text: str) -> None:
        try:
            command = parse_admin_command(player, text, self.server, self.profiles.keys())
        except (AdminCommandError, AdminRefusedError) as exc:
            await self._tell(player, exc.message)
            return
        server = self.server.name
        match command:
            case ListNpcs():
                lines = [
                    f"{npc.id} ({npc.name}) at {_where(self.npc_positions[npc.id])}" for npc in self.profiles.values()
                ]
                await self._tell(player, "; ".join(lines) or "no NPCs on this server")
            case PauseNpc() | ResumeNpc():
                await self._emit(NpcControl(server=server, npc=command.npc, action=command.action, author=player))
                await self._tell(player, f"{command.npc}: {command.action}d")
            case NoteNpc():
                await self._emit(AdminNote(server=server, npc=command.npc, author=player, text=command.text))
                await self._tell(player, f"{command.npc}: note added")
            case SayNpc():
                await self._emit(
                    NpcControl(server=server, npc=command.npc, action="say", text=command.text, author=player)
                )
            case TeleportNpcHere():
                here = self.players.get(player)
                if here is None:
                    await self._tell(player, "your position is not known yet; try again in a moment")
                    return
                await self._move(command.npc, here)
                await self._emit(
                    NpcControl(server=server, npc=command.npc, action="move", position=here, author=player)
                )
                await self._tell(player, f"{command.npc}: moved to {_where(here)}")
            case Reload():
                await self._emit(NpcControl(server=server, npc=ALL_NPCS, action="reload", author=player))
                await self._tell(player, "reloading profiles")

    async def _invite(self, player: str) -> None:
        if not commands.PLAYER_NAME.fullmatch(player):
            return
        snbt = self.settings.minecraft.snbt_text
        for command in voice_invite(self.server, player, self.invites, snbt_text=snbt):
            await self.rcon.command(command)

    async def _tell(self, player: str, text: str) -> None:
        if not commands.PLAYER_NAME.fullmatch(player):
            return
        for command in commands.tellraw_player(player, text):
            await self.rcon.command(command)

    async def _on_positions(self, event: Positions) -> None:
        self.players = {
            entity.name: Position(x=entity.x, y=entity.y, z=entity.z, yaw=entity.yaw, dimension=entity.dimension)
            for entity in event.entities
            if entity.kind == "player"
        }
        await self._emit(event)

    async def _capture_chat(self, tail: LogTail) -> None:
        offer = self.server.voice_page is not None and self.server.voice_page.offer_on_join
        async for line in tail.events():
            try:
                if isinstance(line, ChatLine):
                    await self.on_chat(line.player, line.text)
                elif isinstance(line, PlayerJoined) and offer:
                    await self._invite(line.player)
            except NpcHostError as exc:  # RCON down, or the hub gone past its reconnect window
                # One lost line must not end chat capture for the rest of the process's life.
                log.warning("%s of %s not handled: %s", line.kind, line.player, exc)

    async def _emit(self, event: Event) -> None:
        if self._publish is None:
            raise RuntimeError("MinecraftAdapter.start() was not called")
        await self._publish(event)

    def _refresh_npc_positions(self) -> None:
        self.poller.npcs = [
            EntityPosition(name=npc_id, kind="npc", **at.model_dump()) for npc_id, at in self.npc_positions.items()
        ]

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=f"minecraft:{self.server.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", task.get_name(), exc_info=task.exception())


def _where(at: Position) -> str:
    return f"{at.x:.1f} {at.y:.1f} {at.z:.1f}"
