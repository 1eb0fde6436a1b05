"""The `/bridge` WebSocket endpoint: one port for every game server of the host.

A connection's `hello` names its server; the `BridgeServer` of that name checks the token and serves the connection.
An unknown server name is refused exactly like a wrong token (4001), so a peer cannot probe which servers exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from host.speech.vad import silero_session
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import SUPPORTED_VERSIONS, CloseCode, Hello, ProtocolError, parse_client_message

if TYPE_CHECKING:
    from proximity_audio.bridge_server import BridgeServer

log = logging.getLogger(__name__)

BRIDGE_PATH = "/bridge"
# A close frame's reason is at most 123 bytes of UTF-8; a longer one fails the close itself (1011 and a traceback).
_MAX_REASON_BYTES = 123


class BridgeListener:
    def __init__(self, bridges: Iterable[BridgeServer], limits: BridgeLimits | None = None) -> None:
        self._bridges = {bridge.server_name: bridge for bridge in bridges}
        self.limits = limits or BridgeLimits()
        self._ws_server: Server | None = None

    @property
    def port(self) -> int:
        if self._ws_server is None:
            raise RuntimeError("the bridge is not listening")
        port: int = next(iter(self._ws_server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{BRIDGE_PATH}"

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

    async def close(self) -> None:
        """Stop listening and close every connection (1001)."""
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
            self._ws_server = None

    async def _handle(self, ws: ServerConnection) -> None:
        hello = await self._handshake(ws)
        if hello is None:
            return
        bridge = self._bridges.get(hello.server)
        if bridge is None or not bridge.accepts(hello):
            log.warning("bridge: refused a plugin with a wrong token or server name")
            await ws.close(CloseCode.BAD_TOKEN, "bad token or server name")
            return
        await bridge.serve(ws, hello)

    async def _handshake(self, ws: ServerConnection) -> Hello | None:
        """The first message must be a hello with a supported version, else close."""
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
            await ws.close(CloseCode.HELLO_EXPECTED, _close_reason(exc.message))
            return None
        if not isinstance(hello, Hello):
            await ws.close(CloseCode.HELLO_EXPECTED, f"the first message must be hello, got {hello.type}")
            return None
        if not set(hello.protocol_versions) & set(SUPPORTED_VERSIONS):
            await ws.close(CloseCode.UNSUPPORTED_VERSION, f"supported protocol versions: {list(SUPPORTED_VERSIONS)}")
            return None
        return hello


def _only_bridge_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != BRIDGE_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"the voice bridge is at {BRIDGE_PATH}\n")
    return None


def _close_reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
