"""One companion plugin's connection after a valid hello: its players, their microphones, and what they hear."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from host.config import VADSettings
from host.events import Position
from host.memory_guard import MemoryGuard
from host.speech.vad import VadEvent, vad_missing
from proximity_audio.delivery import Listener, batches, mixed_frames, source_frames
from proximity_audio.hearing import BridgeStats, report_speech
from proximity_audio.hooks import BridgeHooks, call_safely
from proximity_audio.limits import BridgeLimits, FrameRateLimiter
from proximity_audio.microphone import FrameBudget, PlayerMicrophone
from proximity_audio.outbox import Outbox
from proximity_audio.pacer import PacedTick
from proximity_audio.protocol import (
    CloseCode,
    ErrorCode,
    ErrorMessage,
    Frame,
    FrameKind,
    Hello,
    NpcInfo,
    NpcStop,
    NpcStreamEnd,
    NpcStreamStart,
    OutputMode,
    Ping,
    PlayerJoin,
    PlayerLeave,
    Pong,
    Positions,
    ProtocolError,
    WirePosition,
    encode_message,
    iter_frames,
    parse_client_message,
)
from proximity_audio.world import NpcPlacement, SpatialWorld

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger(__name__)

# Error replies per connection: a broken plugin gets told, but cannot make the host flood it back.
_ERRORS_PER_SECOND = 10
_ERROR_BURST = 20
_STALL_POLL_S = 0.02  # one frame: how often the microphones of players mid-utterance are checked for a stall
_LOOP_LAG_S = 0.05  # a poll this much late means the event loop was busy, not that the frames stopped


@dataclass(kw_only=True)
class _Player(Listener):
    mic: PlayerMicrophone
    limiter: FrameRateLimiter
    last_warning: float = -1e9  # when the last rate_limited or not_heard error for this player went out
    left_at: Position | None = None  # where the player was when they left (their world entry is removed later)


def _position(wire: WirePosition) -> Position:
    return Position(x=wire.x, y=wire.y, z=wire.z, yaw=wire.yaw, dimension=wire.dimension)


def npc_info(placement: NpcPlacement) -> NpcInfo:
    p = placement.position
    return NpcInfo(
        npc=placement.npc,
        npc_index=placement.index,
        position=WirePosition(x=p.x, y=p.y, z=p.z, yaw=p.yaw, dimension=p.dimension),
        speaking_range=placement.speaking_range,
        curve=placement.curve,
    )


@dataclass
class SessionContext:
    """What every session of one server shares."""

    server: str
    world: SpatialWorld
    limits: BridgeLimits
    vad: VADSettings
    hooks: BridgeHooks
    stop_npc: Callable[[str], bool]
    budget: FrameBudget  # microphone frames waiting for the VAD, over every connection of the server
    memory: MemoryGuard  # while it refuses, new players are refused
    stats: BridgeStats = field(default_factory=BridgeStats)


class BridgeSession:
    # A plugin reports its players' positions, so it forgets them when they leave; a browser session's player is
    # placed by the game (or a table's game master), which stays the one writer of that position.
    owns_positions = True

    def __init__(self, ws: ServerConnection, context: SessionContext, *, mode: OutputMode, plugin: str) -> None:
        self._ws = ws
        self._ctx = context
        self.mode: OutputMode = mode
        self.plugin = plugin
        self._players: dict[int, _Player] = {}
        self._leaving: list[_Player] = []
        self._mic_ready = asyncio.Event()
        self._closing = False
        self._outbox = Outbox(context.limits.outbox_ticks)
        self._error_budget = FrameRateLimiter(_ERRORS_PER_SECOND, _ERROR_BURST)

    # --- lifecycle -----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the plugin disconnects or goes idle; speech in progress is still delivered afterwards."""
        async with asyncio.TaskGroup() as tasks:
            sender = tasks.create_task(self._outbox.drain_forever(self._ws.send))
            listener = tasks.create_task(self._listen_loop())
            try:
                await self._receive_loop()
            finally:
                sender.cancel()
                self._closing = True
                self._mic_ready.set()
                await listener

    def send(self, message: BaseModel) -> None:
        self._outbox.put_control(encode_message(message))

    def _send_error(self, code: str, message: str) -> None:
        if self._error_budget.allow():
            self._ctx.stats.errors_sent += 1
            self.send(ErrorMessage(code=code, message=message))

    # --- incoming ------------------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._ctx.limits.idle_timeout_s):
                    message = await self._ws.recv()
            except TimeoutError:
                await self._ws.close(CloseCode.IDLE, "idle: nothing received within the idle timeout")
                return
            try:
                if isinstance(message, str):
                    await self._on_text(message)
                else:
                    self._on_binary(message)
            except ProtocolError as exc:
                self._send_error(exc.code, exc.message)

    async def _on_text(self, text: str) -> None:
        message = parse_client_message(text)
        if isinstance(message, PlayerJoin):
            self._join(message)
        elif isinstance(message, PlayerLeave):
            self._leave(message.index)
        elif isinstance(message, Positions):
            self._move(message)
        elif isinstance(message, NpcStop):
            await self._stop(message.npc)
        elif isinstance(message, Ping):
            self.send(Pong(nonce=message.nonce))
        elif isinstance(message, Hello):
            raise ProtocolError("hello was already accepted on this connection")

    def _join(self, join: PlayerJoin, *, admitted: bool = False) -> None:
        """`admitted`: the server already let this player in (a voice page, checked before it replaced another)."""
        if any(p.name == join.player and i != join.index for i, p in self._players.items()):
            raise ProtocolError(f"player {join.player!r} already joined under another index")
        if join.index in self._players:
            self._leave(join.index)
        elif len(self._players) >= self._ctx.limits.max_players:
            raise ProtocolError(
                f"player {join.player!r} refused: {self._ctx.limits.max_players} players already joined",
                code=ErrorCode.TOO_MANY_PLAYERS,
            )
        elif not admitted and (refusal := self._ctx.memory.refusal()) is not None:
            self._ctx.memory.refused("player")
            raise ProtocolError(f"player {join.player!r} refused: {refusal}", code=ErrorCode.TRY_AGAIN_LATER)
        limits = self._ctx.limits
        self._players[join.index] = _Player(
            index=join.index,
            name=join.player,
            mic=PlayerMicrophone(
                join.player,
                vad=self._ctx.vad,
                max_gap=limits.max_gap_frames,
                max_pending=limits.max_pending_frames_per_player,
                budget=self._ctx.budget,
            ),
            limiter=FrameRateLimiter(limits.max_frames_per_second, limits.frame_burst),
        )
        if join.position is not None:
            self._ctx.world.move_player(join.player, _position(join.position))

    def _leave(self, index: int) -> None:
        player = self._players.pop(index, None)
        if player is None:
            raise ProtocolError(f"no player has joined with index {index}", code=ErrorCode.UNKNOWN_PLAYER)
        player.left_at = self._ctx.world.player(player.name)
        self._leaving.append(player)
        self._mic_ready.set()

    def _move(self, positions: Positions) -> None:
        unknown = []
        for entry in positions.players:
            player = self._players.get(entry.index)
            if player is None:
                unknown.append(entry.index)
                continue
            self._ctx.world.move_player(player.name, _position(entry))
        if unknown:
            raise ProtocolError(
                f"positions for indexes that have not joined: {unknown[:20]}", code=ErrorCode.UNKNOWN_PLAYER
            )

    async def _stop(self, npc: str) -> None:
        if self._ctx.world.npc(npc) is None:
            raise ProtocolError(f"no NPC {npc[:64]!r} on server {self._ctx.server!r}", code=ErrorCode.UNKNOWN_NPC)
        # The hook first: what the players heard of the reply is known only while its audio is still queued.
        await call_safely("npc-stop", self._ctx.hooks.on_npc_stop, npc)
        self._ctx.stop_npc(npc)

    def end_early(self, player: str, utterance_id: str, speech_end_ts: float, silence_ms: int) -> None:
        """`player`'s words up to the pause that ended at `speech_end_ts` sound finished: their utterance may end
        after `silence_ms` of silence (`PlayerMicrophone.end_early`). A player not on this connection is ignored."""
        for joined in self._players.values():
            if joined.name == player:
                joined.mic.end_early(utterance_id, speech_end_ts, silence_ms)

    def _on_binary(self, data: bytes) -> None:
        for frame in iter_frames(data):
            try:
                self._on_frame(frame)
            except ProtocolError as exc:
                self._send_error(exc.code, exc.message)

    def _on_frame(self, frame: Frame) -> None:
        if frame.kind is not FrameKind.MICROPHONE:
            raise ProtocolError(f"plugins send only MICROPHONE frames, got {frame.kind.name}", code=ErrorCode.BAD_FRAME)
        player = self._players.get(frame.index)
        if player is None:
            raise ProtocolError(
                f"frame for player index {frame.index}, which has not joined", code=ErrorCode.UNKNOWN_PLAYER
            )
        stats = self._ctx.stats
        missing = vad_missing()
        if missing is not None:  # installed without the `voice` extra: say so, once a second per player
            now = time.monotonic()
            if now - player.last_warning >= 1.0:
                player.last_warning = now
                raise ProtocolError(f"microphone frames are dropped: {missing.message}", code=ErrorCode.NOT_HEARD)
            return
        if not player.limiter.allow():
            stats.frames_rate_limited += 1
            now = time.monotonic()
            if now - player.last_warning >= 1.0:
                player.last_warning = now
                limit = self._ctx.limits.max_frames_per_second
                raise ProtocolError(
                    f"player {player.name!r} sends more than {limit} frames/s; extra frames are dropped",
                    code=ErrorCode.RATE_LIMITED,
                )
            return
        admission = player.mic.accept(frame.sequence, frame.pcm)
        if not admission.accepted:
            stats.frames_late += 1
            return
        # Silence filled in is audio too: without this, sequence numbers that skip 25 at a time would make each frame
        # 26 frames of VAD work and queued audio.
        player.limiter.charge(admission.filled)
        stats.frames_in += 1
        stats.frames_filled += admission.filled
        self._mic_ready.set()

    # --- microphones -> VAD -> hooks -----------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        """Runs VAD for all players in one worker-thread call per wake-up, so frames batch up under load."""
        stall_s = self._ctx.limits.stall_ms / 1000
        while True:
            # Someone mid-utterance: wake even without frames, in case theirs have stopped (see `fill_stalled`).
            speaking = any(player.mic.in_utterance for player in self._players.values())
            waited_from = time.monotonic()
            lagging = False
            try:
                async with asyncio.timeout(_STALL_POLL_S if speaking else None):
                    await self._mic_ready.wait()
            except TimeoutError:
                # Woken late, the event loop itself was busy: frames may be waiting unread in the socket, so no stall
                # is judged this round (a frame stuck behind a busy loop is not a player gone silent).
                lagging = time.monotonic() - waited_from > _STALL_POLL_S + _LOOP_LAG_S
                await asyncio.sleep(0)
            self._mic_ready.clear()
            closing = self._closing
            leaving, self._leaving = self._leaving, []
            if closing:
                for player in self._players.values():
                    player.left_at = self._ctx.world.player(player.name)
                    leaving.append(player)
            now = time.time()
            for player in self._players.values() if not lagging else ():
                player.mic.fill_stalled(now, stall_s)
            busy = [p for p in self._players.values() if p.mic.has_pending and not closing]
            if not busy and not leaving and not closing:
                continue
            results = await asyncio.to_thread(_run_vad, busy, leaving)
            for player, events in results:
                ctx = self._ctx
                await report_speech(
                    player.name, events, server=ctx.server, world=ctx.world, hooks=ctx.hooks, stats=ctx.stats
                )
            for player in leaving:
                if not self.owns_positions:  # a voice page closing is not its player leaving the game
                    continue
                if player.left_at is not None:
                    self._ctx.world.remove_player(player.name, only_if_at=player.left_at)
                await call_safely("player-left", self._ctx.hooks.on_player_left, player.name)
            if closing:
                return

    # --- outgoing audio ------------------------------------------------------------------------------------------

    def deliver(self, tick: PacedTick) -> None:
        """Queue what this plugin's players hear from one pacer tick."""
        world = self._ctx.world
        for npc in tick.started:
            placement = world.npc(npc)
            if placement is not None:
                self._outbox.put_stream_message(encode_message(NpcStreamStart(**npc_info(placement).model_dump())))
        if tick.frames and self._players:
            listeners = list(self._players.values())
            deliver = source_frames if self.mode == "source" else mixed_frames
            self._queue_frames(deliver(world, listeners, tick))
        for npc, reason in tick.ended:
            placement = world.npc(npc)
            if placement is not None:
                end = NpcStreamEnd(npc=npc, npc_index=placement.index, reason=reason)
                self._outbox.put_stream_message(encode_message(end))

    def _queue_frames(self, frames: list[bytes]) -> None:
        """One tick's frames in as few messages as the size limit allows (50 players: one message, not 50)."""
        dropped = self._outbox.frames_dropped
        self._outbox.put_tick(
            [(b"".join(batch), len(batch)) for batch in batches(frames, self._ctx.limits.max_message_bytes)]
        )
        self._ctx.stats.frames_out += len(frames)
        self._ctx.stats.frames_out_dropped += self._outbox.frames_dropped - dropped


def _run_vad(busy: list[_Player], leaving: list[_Player]) -> list[tuple[_Player, list[VadEvent]]]:
    results = [(player, player.mic.process()) for player in busy]
    results += [(player, player.mic.finish()) for player in leaving]
    return [(player, events) for player, events in results if events]
