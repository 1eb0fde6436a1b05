"""The Minecraft `GameAdapter`: RCON, NPC bodies, positions and chat capture for one server.

Produces `PlayerSaid` (chat, with the speaker's position, read again when stale), `Positions`, for operators' `!npc`
lines `NpcControl` / `AdminNote`, `NpcTurnCut` (a line the server did not show, on a chat-only server) and `NpcActed`
(every action asked for). Consumes `NpcTurnStarted` (the NPC turns to the player), `NpcSentence` (the NPC's line to
the players within its speaking range), `NpcTurnEnded` (the reply's action tags, performed once per turn) and
`NpcControl` (`move`, `act`, `stop`). Every command's reply is checked (replies.py). Deciding who answers is the
brain's job (host/brain/addressing.py), not the adapter's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
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
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerSaid,
    Position,
)
from host.invites import InviteSigner, invite_secret
from host.profiles.schema import NpcProfile, ServerProfile
from integrations.base import GameAdapter, Publish
from integrations.minecraft import commands
from integrations.minecraft.actions import ActionPerformer
from integrations.minecraft.admin_commands import (
    ActNpc,
    AdminCommandError,
    AdminRefusedError,
    ListNpcs,
    NoteNpc,
    PauseNpc,
    Reload,
    ResumeNpc,
    SayNpc,
    StopNpc,
    TeleportNpcHere,
    is_admin_command,
    parse_admin_command,
)
from integrations.minecraft.bodies import NpcBodies, body_position
from integrations.minecraft.connection import rcon_client
from integrations.minecraft.delivery import ChatDelivery
from integrations.minecraft.give_ledger import GiveLedger
from integrations.minecraft.log_formats import ChatLine, PlayerJoined
from integrations.minecraft.log_tail import LogTail
from integrations.minecraft.positions import PositionPoller
from integrations.minecraft.probe import probe_commands
from integrations.minecraft.rcon import CommandRunner, RconError, RconUnavailableError
from integrations.minecraft.replies import CommandRejectedError, run_checked
from integrations.minecraft.voice_invites import InviteCooldown, is_voice_command, voice_invite

log = logging.getLogger(__name__)

ALL_NPCS = "*"  # NpcControl.npc of a `reload`, which concerns every NPC of the server
_PLAYER_LEFT = frozenset({"no_player"})
MAX_ACTED_TURNS = 256


class MinecraftAdapter(GameAdapter):
    consumes = frozenset({"npc_turn_started", "npc_sentence", "npc_turn_ended", "npc_control"})
    produces = frozenset({"player_said", "positions", "npc_control", "admin_note", "npc_turn_cut", "npc_acted"})

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
        self.poller = PositionPoller(
            server.name,
            self.rcon,
            interval_s=tuning.positions_interval_s,
            stale_after_s=tuning.position_stale_s,
        )
        style = commands.ChatStyle(
            prefix=tuning.npc_chat_prefix,
            color=tuning.npc_chat_color,
            hover=tuning.npc_chat_hover,
            snbt_text=tuning.snbt_text,
        )
        # With voice (plugin bridge or browser page) the line may still have been heard: only a chat-only server
        # corrects the record when a line is not shown.
        voice_page = server.voice_page is not None and server.voice_page.enabled
        self.chat = ChatDelivery(self.rcon, style, record_failures=server.bridge is None and not voice_page)
        self.log_poll_interval_s = tuning.log_poll_interval_s
        self.actions = ActionPerformer(
            server.name,
            self.rcon,
            self.profiles,
            self.bodies.ids,
            where=self.npc_positions.__getitem__,
            place=self._place,
            player_at=self.poller.position,
            locate=self._locate,
            ledger=GiveLedger(settings.data_dir / "minecraft" / server.name / "given.json"),
        )
        self._acted_turns: OrderedDict[str, None] = OrderedDict()  # turn ends whose actions ran (redeliveries)
        self.invites = InviteSigner(invite_secret(settings.voice_page.invite_secret))
        self.invite_cooldown = InviteCooldown()
        self._publish: Publish | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self, publish: Publish) -> None:
        self._publish = publish
        self._refresh_npc_positions()
        self.rcon.add_connect_hook(self._probe)
        try:
            await self.bodies.start()  # a wrong password or protocol error propagates: that is configuration
        except RconUnavailableError as exc:
            # Not ready is expected (server still starting): the bodies appear on the first successful connection.
            log.warning("%s; NPC bodies will be summoned when it answers", exc)
        self._spawn(self.poller.run(self._emit), "positions")
        if self.server.log_path:
            path = Path(self.server.log_path)
            if not await asyncio.to_thread(path.is_file):
                log.warning(
                    "server '%s': log file %s does not exist (yet); chat is captured once the server writes it",
                    self.server.name,
                    path,
                )
            tail = LogTail(path, poll_interval_s=self.log_poll_interval_s)
            await tail.open()
            self._spawn(self._capture_chat(tail), "chat")
        else:
            log.warning("server '%s' has no log_path: chat is not captured", self.server.name)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self.actions.close()
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
        except CommandRejectedError:
            pass  # counted and logged by kind where the reply was read
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
        # Walked up and spoke at once: who heard the line depends on where the player stands now.
        position = await self._locate(player)
        await self._emit(PlayerSaid(server=self.server.name, player=player, text=text, position=position))

    async def _locate(self, player: str) -> Position | None:
        """The player's position, read again first when the last poll is older than `position_stale_s`."""
        if not self.poller.is_stale(player):
            return self.poller.position(player)
        try:
            return await self.poller.refresh(player)
        except RconError as exc:
            log.debug("position of a player not refreshed: %s", exc)
            return self.poller.position(player)

    async def _act(self, event: Event) -> None:
        if isinstance(event, NpcSentence) and event.npc in self.profiles:
            npc = self.profiles[event.npc]
            cut = await self.chat.show(npc.name, event, self.npc_positions[npc.id], npc.world.speaking_range)
            if cut is not None:
                await self._emit(cut)
        elif isinstance(event, NpcTurnStarted) and event.npc in self.bodies.ids:
            player = self.poller.position(event.player)
            if player is not None:
                await self.bodies.face(event.npc, player)
        elif isinstance(event, NpcTurnEnded) and event.npc in self.profiles:
            await self._act_out_turn(event)
        elif isinstance(event, NpcControl) and event.npc in self.profiles:
            await self._control(event)

    async def _control(self, event: NpcControl) -> None:
        if event.action == "move" and event.position is not None:
            self.actions.stop(event.npc)
            if event.npc in self.bodies.ids:
                await self.bodies.move(event.npc, event.position)
            self._place(event.npc, event.position)
        elif event.action in ("act", "stop"):
            text = event.text if event.action == "act" and event.text else "stop"
            acted = await self.actions.request(event.npc, event.author, text, by="operator")
            await self._emit(acted)
            reason = f" ({acted.reason})" if acted.reason else ""
            await self._tell(event.author, f"{event.npc}: {acted.action} {acted.outcome}{reason}")

    async def _act_out_turn(self, ended: NpcTurnEnded) -> None:
        """The actions the NPC's reply asked for, once per turn (a redelivered end is not acted twice)."""
        if not ended.actions or ended.interrupted or ended.turn_id in self._acted_turns:
            return
        self._acted_turns[ended.turn_id] = None
        while len(self._acted_turns) > MAX_ACTED_TURNS:
            self._acted_turns.popitem(last=False)
        for action in ended.actions:
            await self._emit(
                await self.actions.request(ended.npc, ended.player, action, by="npc", turn_id=ended.turn_id)
            )

    def _place(self, npc_id: str, at: Position) -> None:
        """Where an NPC's body now stands: hearing, speaking and a re-summon after a restart count from here."""
        self.npc_positions[npc_id] = at
        if npc_id in self.bodies.positions:
            self.bodies.positions[npc_id] = at
        self._refresh_npc_positions()

    async def _admin(self, player: str, text: str) -> None:
        try:
            command = parse_admin_command(player, text, self.server, self.profiles.keys())
        except AdminRefusedError as exc:
            # Who tried what, for the operators; repr escapes whatever control characters the line carries.
            log.warning("%s: refused %r from %r: %s", self.server.name, text[:200], player, exc.message)
            await self._tell(player, exc.message)
            return
        except AdminCommandError as exc:
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
            case ActNpc() | StopNpc():
                act_text = command.text if isinstance(command, ActNpc) else None
                # Performed when the event comes back from the hub, like the same command from the admin page.
                await self._emit(
                    NpcControl(server=server, npc=command.npc, action=command.action, text=act_text, author=player)
                )
            case TeleportNpcHere():
                here = self.poller.position(player)
                if here is None:
                    await self._tell(player, "your position is not known yet; try again in a moment")
                    return
                # Performed once, when the event comes back from the hub (as a move from the admin page is).
                await self._emit(
                    NpcControl(server=server, npc=command.npc, action="move", position=here, author=player)
                )
                await self._tell(player, f"{command.npc}: moving to {_where(here)}")
            case Reload():
                await self._emit(NpcControl(server=server, npc=ALL_NPCS, action="reload", author=player))
                await self._tell(player, "reloading profiles")

    async def _invite(self, player: str) -> None:
        if not commands.PLAYER_NAME.fullmatch(player) or not self.invite_cooldown.allow(player):
            return
        snbt = self.settings.minecraft.snbt_text
        for command in voice_invite(self.server, player, self.invites, snbt_text=snbt):
            await run_checked(self.rcon.command, "tellraw", command, expected=_PLAYER_LEFT)

    async def _tell(self, player: str, text: str) -> None:
        if not commands.PLAYER_NAME.fullmatch(player):
            return
        for command in commands.tellraw_player(player, text):
            await run_checked(self.rcon.command, "tellraw", command, expected=_PLAYER_LEFT)

    async def _probe(self, run: CommandRunner) -> None:
        await probe_commands(run, self.server.name)

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
