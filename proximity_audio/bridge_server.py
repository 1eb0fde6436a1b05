"""One game server's voice bridge: its companion plugins' microphones go to the VAD, and NPC voices are paced out
to the players who should hear them. The wire format is docs/bridge-protocol.md.

Integration surface (the gateway role wires it to the hub):

    server = BridgeServer(world, server="survival", token=token, on_utterance=publish_utterance,
                          on_speech_started=barge_in)
    await server.start("0.0.0.0", 8765)   # its own /bridge endpoint; or open() it and share a BridgeListener
    server.play(npc_id, pcm, rate)   # NpcAudio: any rate, resampled to 48 kHz, paced in real time
    server.stop(npc_id)              # barge-in: silent within one 20 ms frame
    server.tell(player, line)        # a transcript line to that player's voice page, if one is open
    await server.close()
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from types import TracebackType

from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from host.config import VADSettings
from host.errors import ConfigError
from host.events import NpcAudio
from host.memory_guard import MemoryGuard
from host.speech.audio import Int16Array
from proximity_audio.bridge_listener import BridgeListener
from proximity_audio.bridge_session import BridgeSession, SessionContext, npc_info
from proximity_audio.browser_protocol import BrowserWelcome, Line
from proximity_audio.browser_session import BrowserSession
from proximity_audio.hearing import BridgeStats
from proximity_audio.hooks import (
    BridgeHooks,
    OnChat,
    OnNpcStop,
    OnPlayerLeft,
    OnSpeechPaused,
    OnSpeechStarted,
    OnUtterance,
    ignore,
)
from proximity_audio.limits import BridgeLimits
from proximity_audio.microphone import FrameBudget
from proximity_audio.pacer import PacedTick, Pacer
from proximity_audio.protocol import CloseCode, Hello, LimitsInfo, Welcome
from proximity_audio.world import SpatialWorld

log = logging.getLogger(__name__)

# A hello's token -> whether it opens this server (it is not the configured one). Awaited per such hello.
CheckToken = Callable[[str], Awaitable[bool]]


class BridgeServer:
    def __init__(
        self,
        world: SpatialWorld,
        *,
        server: str,
        token: str | SecretStr | None,
        on_utterance: OnUtterance,
        on_speech_started: OnSpeechStarted | None = None,
        on_npc_stop: OnNpcStop | None = None,
        on_chat: OnChat | None = None,
        on_speech_paused: OnSpeechPaused | None = None,
        on_player_left: OnPlayerLeft | None = None,
        limits: BridgeLimits | None = None,
        vad: VADSettings | None = None,
        on_audio_opened: Callable[[str, Hashable], None] | None = None,
        npc_names: Callable[[], Mapping[str, str]] = dict,
        memory: MemoryGuard | None = None,
        check_token: CheckToken | None = None,
    ) -> None:
        """`on_audio_opened(npc, opening)` is called when the first frame of audio played with `opens=opening`
        leaves for the players (the moment a reply starts to be heard). `npc_names`: NPC id -> the name players
        know it by, for voice pages (ids are shown without it). `memory`: while it refuses, new connections, players
        and voice pages are refused with its reason (none: never). `check_token`: whether a hello's token that is not
        `token` is one set elsewhere (the admin page's, host/roles/bridge_tokens.py)."""
        self._check_token = check_token
        self.world = world
        self._on_audio_opened = on_audio_opened
        self._npc_names = npc_names
        self.limits = limits or BridgeLimits()
        # None (and no `check_token`): no companion plugin may connect (voice pages only).
        self._token = SecretStr(token) if isinstance(token, str) else token
        if self._token is not None and len(self._token.get_secret_value()) < self.limits.min_token_chars:
            raise ConfigError(
                f"the bridge token of server '{server}' is shorter than {self.limits.min_token_chars} characters: "
                "anyone could guess it; generate one with `python -c 'import secrets; print(secrets.token_urlsafe())'`",
                code="bridge_token",
            )
        hooks = BridgeHooks(
            on_utterance,
            on_speech_started or ignore,
            on_npc_stop or ignore,
            on_chat or ignore,
            on_speech_paused or ignore,
            on_player_left or ignore,
        )
        self._pacer = Pacer()
        budget = FrameBudget(self.limits.max_pending_frames)
        self.memory = memory or MemoryGuard(None)
        self._context = SessionContext(
            server, world, self.limits, vad or VADSettings(), hooks, self.stop, budget, self.memory
        )
        self._sessions: set[BridgeSession] = set()
        self._pages: dict[str, BrowserSession] = {}  # player -> their open voice page
        self._listener: BridgeListener | None = None
        self._pacer_task: asyncio.Task[None] | None = None

    @property
    def server_name(self) -> str:
        return self._context.server

    @property
    def stats(self) -> BridgeStats:
        return self._context.stats

    @property
    def frames_waiting(self) -> int:
        """Microphone frames waiting for the VAD, over every connection (bounded by `max_pending_frames`)."""
        return self._context.budget.waiting

    @property
    def frames_dropped(self) -> int:
        """Microphone frames dropped because the VAD fell behind (the oldest waiting ones go first)."""
        return self._context.budget.dropped

    @property
    def connections(self) -> int:
        return len(self._sessions)

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the bridge is not started")
        return self._listener.port

    @property
    def url(self) -> str:
        if self._listener is None:
            raise RuntimeError("the bridge is not started")
        return self._listener.url

    # --- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 = any free port) with an endpoint of its own."""
        await self.open()
        self._listener = BridgeListener([self], self.limits)
        await self._listener.start(host, port)

    async def open(self) -> None:
        """Start pacing NPC audio; a `BridgeListener` brings the connections."""
        if self._pacer_task is None:
            self._pacer_task = asyncio.create_task(self._pacer.run(self._on_tick), name="bridge-pacer")

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pacer_task is not None:
            self._pacer_task.cancel()
            await asyncio.gather(self._pacer_task, return_exceptions=True)
            self._pacer_task = None

    async def __aenter__(self) -> BridgeServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- NPC audio -----------------------------------------------------------------------------------------------

    def play(
        self,
        npc: str,
        pcm: bytes | Int16Array,
        rate: int,
        *,
        final: bool = True,
        mark: Hashable | None = None,
        opens: Hashable | None = None,
    ) -> None:
        """Queue mono PCM16 of `npc` at any rate; it leaves in real time to the players within its speaking range.
        `mark` names the sentence a final chunk ends, for `heard`; `opens` names this audio for `on_audio_opened`."""
        self._pacer.enqueue(npc, pcm, rate, final=final, mark=mark, opens=opens)

    def play_event(self, event: NpcAudio, *, opens_turn: bool = False) -> None:
        """Queue a turn's audio; `opens_turn`: it is the turn's first, reported by `on_audio_opened` as its turn id."""
        mark = (event.turn_id, event.index) if event.final else None
        opens = event.turn_id if opens_turn else None
        self.play(event.npc, event.audio, event.sample_rate, final=event.final, mark=mark, opens=opens)

    def heard(self, npc: str, turn_id: str) -> list[int]:
        """Indexes of the sentences of `turn_id` (queued by `play_event`) that `npc` has played to the end."""
        return sorted(mark[1] for mark in self._pacer.heard(npc) if isinstance(mark, tuple) and mark[0] == turn_id)

    def stop(self, npc: str) -> bool:
        """Cut `npc`'s voice now (barge-in, admin stop); True if it was talking or had audio queued."""
        return self._pacer.stop(npc)

    @property
    def sounding(self) -> bool:
        """Some NPC has audio queued or is still sounding."""
        return self._pacer.busy

    def queued_frames(self, npc: str) -> int:
        return self._pacer.queued_frames(npc)

    async def _on_tick(self, tick: PacedTick) -> None:
        for session in self._sessions:
            session.deliver(tick)
        if self._on_audio_opened is not None:
            for npc, opening in tick.opened:
                self._on_audio_opened(npc, opening)

    # --- connections ---------------------------------------------------------------------------------------------

    async def accepts(self, hello: Hello) -> bool:
        """True when the hello names this server and carries its token: the configured one (compared in constant
        time) or, failing that, one `check_token` accepts (the token an admin set on the admin page)."""
        if hello.server != self.server_name:
            return False
        offered = hello.token.get_secret_value()
        if self._token is not None and hmac.compare_digest(offered.encode(), self._token.get_secret_value().encode()):
            return True
        # Shorter than any token the bridge would take: refused without asking the store.
        if self._check_token is None or len(offered) < self.limits.min_token_chars:
            return False
        return await self._check_token(offered)

    async def serve(self, ws: ServerConnection, hello: Hello) -> None:
        """Serve one plugin connection after its accepted hello, until it closes."""
        session = BridgeSession(ws, self._context, mode=hello.mode, plugin=hello.plugin)
        self._sessions.add(session)
        log.info("bridge: plugin %r of '%s' connected in %s mode", hello.plugin or "?", self.server_name, hello.mode)
        try:
            session.send(self._welcome(hello))
            await session.run()
        except* ConnectionClosed:
            pass
        finally:
            self._sessions.discard(session)
            log.info("bridge: plugin %r of '%s' disconnected", hello.plugin or "?", self.server_name)

    async def serve_page(self, ws: ServerConnection, player: str) -> None:
        """Serve one voice page of `player` (its invite was redeemed) until it closes; a newer page of the same player
        replaces it, so a player is never two listeners."""
        previous = self._pages.get(player)
        if previous is None and len(self._pages) >= self.limits.max_players:
            await ws.close(CloseCode.TOO_MANY_SESSIONS, f"{self.limits.max_players} voice pages are open already")
            return
        if previous is None and (refusal := self.memory.refusal()) is not None:
            self.memory.refused("voice_page")  # a page reopened by its player replaces one: no more memory
            await ws.close(CloseCode.TRY_AGAIN_LATER, f"{refusal} with a new link")  # this one is used up
            return
        if previous is not None:
            await previous.close(CloseCode.REPLACED, "this player opened the voice page somewhere else")
        session = BrowserSession(ws, player, self._context)
        self._pages[player] = session
        self._sessions.add(session)
        log.info("bridge: %s opened the voice page of '%s'", player, self.server_name)
        try:
            session.send(self._page_welcome(player))
            await session.run()
        except* ConnectionClosed:
            pass
        finally:
            self._sessions.discard(session)
            if self._pages.get(player) is session:
                del self._pages[player]
            log.info("bridge: %s closed the voice page of '%s'", player, self.server_name)

    def end_early(self, player: str, utterance_id: str, speech_end_ts: float, silence_ms: int) -> None:
        """What `player` said up to the pause that ended at `speech_end_ts` sounds finished (a question, a whole
        sentence): that utterance ends after `silence_ms` of silence instead of `vad.end_silence_ms`, unless the
        player has gone on speaking since."""
        for session in self._sessions:
            session.end_early(player, utterance_id, speech_end_ts, silence_ms)

    def tell(self, player: str, line: Line) -> None:
        """Show a transcript line on `player`'s voice page, if they have one open."""
        page = self._pages.get(player)
        if page is not None:
            page.tell(line)

    @property
    def pages(self) -> list[str]:
        """The players who have a voice page open."""
        return list(self._pages)

    def _limits_info(self) -> LimitsInfo:
        limits = self.limits
        return LimitsInfo(
            max_message_bytes=limits.max_message_bytes,
            max_frames_per_second=limits.max_frames_per_second,
            max_players=limits.max_players,
            idle_timeout_s=limits.idle_timeout_s,
        )

    def _page_welcome(self, player: str) -> BrowserWelcome:
        npcs = [npc_info(placement) for placement in self.world.npcs]
        names = {npc: name for npc, name in self._npc_names().items() if self.world.npc(npc) is not None}
        return BrowserWelcome(
            server=self.server_name, player=player, limits=self._limits_info(), npcs=npcs, npc_names=names
        )

    def _welcome(self, hello: Hello) -> Welcome:
        return Welcome(
            mode=hello.mode, limits=self._limits_info(), npcs=[npc_info(placement) for placement in self.world.npcs]
        )
