"""The `/bridge` WebSocket server: authenticates companion plugins, feeds their microphones to the VAD, and paces
NPC voices out to the players who should hear them. The wire format is docs/bridge-protocol.md.

Integration surface (the gateway role wires it to the hub):

    server = BridgeServer(world, server="survival", token=token, on_utterance=publish_utterance,
                          on_speech_started=barge_in)
    await server.start("0.0.0.0", 8765)
    server.play(npc_id, pcm, rate)   # NpcAudio: any rate, resampled to 48 kHz, paced in real time
    server.stop(npc_id)              # barge-in: silent within one 20 ms frame
    await server.close()
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from http import HTTPStatus
from types import TracebackType

from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from host.config import VADSettings
from host.events import NpcAudio
from host.speech.audio import Int16Array
from host.speech.vad import silero_session
from proximity_audio.bridge_session import BridgeSession, SessionContext, npc_info
from proximity_audio.hearing import BridgeStats
from proximity_audio.hooks import BridgeHooks, OnNpcStop, OnSpeechStarted, OnUtterance, ignore
from proximity_audio.limits import BridgeLimits
from proximity_audio.pacer import PacedTick, Pacer
from proximity_audio.protocol import (
    SUPPORTED_VERSIONS,
    CloseCode,
    Hello,
    LimitsInfo,
    ProtocolError,
    Welcome,
    parse_client_message,
)
from proximity_audio.world import SpatialWorld

log = logging.getLogger(__name__)

BRIDGE_PATH = "/bridge"


class BridgeServer:
    def __init__(
        self,
        world: SpatialWorld,
        *,
        server: str,
        token: str | SecretStr,
        on_utterance: OnUtterance,
        on_speech_started: OnSpeechStarted | None = None,
        on_npc_stop: OnNpcStop | None = None,
        limits: BridgeLimits | None = None,
        vad: VADSettings | None = None,
    ) -> None:
        self.world = world
        self.limits = limits or BridgeLimits()
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        hooks = BridgeHooks(on_utterance, on_speech_started or ignore, on_npc_stop or ignore)
        self._pacer = Pacer()
        self._context = SessionContext(server, world, self.limits, vad or VADSettings(), hooks, self.stop)
        self._sessions: set[BridgeSession] = set()
        self._ws_server: Server | None = None
        self._pacer_task: asyncio.Task[None] | None = None

    @property
    def server_name(self) -> str:
        return self._context.server

    @property
    def stats(self) -> BridgeStats:
        return self._context.stats

    @property
    def connections(self) -> int:
        return len(self._sessions)

    @property
    def port(self) -> int:
        if self._ws_server is None:
            raise RuntimeError("the bridge is not started")
        port: int = next(iter(self._ws_server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{BRIDGE_PATH}"

    # --- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 = any free port); the VAD model loads first, in a thread."""
        await asyncio.to_thread(silero_session)
        limits = self.limits
        self._ws_server = await serve(
            self._handle,
            host,
            port,
            process_request=_only_bridge_path,
            compression=None,  # PCM barely compresses; deflate cost most of the CPU at 50 players
            max_size=limits.max_message_bytes,
            ping_interval=limits.ping_interval_s,
            ping_timeout=limits.ping_timeout_s,
        )
        self._pacer_task = asyncio.create_task(self._pacer.run(self._on_tick), name="bridge-pacer")

    async def close(self) -> None:
        if self._pacer_task is not None:
            self._pacer_task.cancel()
            await asyncio.gather(self._pacer_task, return_exceptions=True)
            self._pacer_task = None
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
            self._ws_server = None

    async def __aenter__(self) -> BridgeServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- NPC audio -----------------------------------------------------------------------------------------------

    def play(self, npc: str, pcm: bytes | Int16Array, rate: int, *, final: bool = True) -> None:
        """Queue mono PCM16 of `npc` at any rate; it leaves in real time to the players within its speaking range."""
        self._pacer.enqueue(npc, pcm, rate, final=final)

    def play_event(self, event: NpcAudio) -> None:
        self.play(event.npc, event.audio, event.sample_rate, final=event.final)

    def stop(self, npc: str) -> bool:
        """Cut `npc`'s voice now (barge-in, admin stop); True if it was talking or had audio queued."""
        return self._pacer.stop(npc)

    def queued_frames(self, npc: str) -> int:
        return self._pacer.queued_frames(npc)

    async def _on_tick(self, tick: PacedTick) -> None:
        for session in self._sessions:
            session.deliver(tick)

    # --- connections ---------------------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        hello = await self._handshake(ws)
        if hello is None:
            return
        session = BridgeSession(ws, hello, self._context)
        self._sessions.add(session)
        log.info("bridge: plugin %r connected in %s mode", hello.plugin or "?", hello.mode)
        try:
            session.send(self._welcome(hello))
            await session.run()
        except* ConnectionClosed:
            pass
        finally:
            self._sessions.discard(session)
            log.info("bridge: plugin %r disconnected", hello.plugin or "?")

    async def _handshake(self, ws: ServerConnection) -> Hello | None:
        """The first message must be a hello with a supported version and this server's token, else close."""
        try:
            async with asyncio.timeout(self.limits.hello_timeout_s):
                first = await ws.recv()
        except TimeoutError:
            await ws.close(CloseCode.HELLO_EXPECTED, "no hello within the hello timeout")
            return None
        except ConnectionClosed:
            return None
        if not isinstance(first, str):
            await ws.close(CloseCode.HELLO_EXPECTED, "the first message must be a JSON hello")
            return None
        try:
            hello = parse_client_message(first)
        except ProtocolError as exc:
            await ws.close(CloseCode.HELLO_EXPECTED, exc.message[:120])
            return None
        if not isinstance(hello, Hello):
            await ws.close(CloseCode.HELLO_EXPECTED, f"the first message must be hello, got {hello.type}")
            return None
        if not set(hello.protocol_versions) & set(SUPPORTED_VERSIONS):
            await ws.close(CloseCode.UNSUPPORTED_VERSION, f"supported protocol versions: {list(SUPPORTED_VERSIONS)}")
            return None
        token_ok = hmac.compare_digest(hello.token.get_secret_value().encode(), self._token.get_secret_value().encode())
        if not token_ok or hello.server != self.server_name:
            log.warning("bridge: refused a plugin with a wrong token or server name")
            await ws.close(CloseCode.BAD_TOKEN, "bad token or server name")
            return None
        return hello

    def _welcome(self, hello: Hello) -> Welcome:
        limits = self.limits
        return Welcome(
            mode=hello.mode,
            limits=LimitsInfo(
                max_message_bytes=limits.max_message_bytes,
                max_frames_per_second=limits.max_frames_per_second,
                max_players=limits.max_players,
                idle_timeout_s=limits.idle_timeout_s,
            ),
            npcs=[npc_info(placement) for placement in self.world.npcs],
        )


def _only_bridge_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != BRIDGE_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"the voice bridge is at {BRIDGE_PATH}\n")
    return None
