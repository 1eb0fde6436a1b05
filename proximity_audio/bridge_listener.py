"""The `/bridge` WebSocket endpoint: one port for every game server of the host, and `/voice` for voice pages.

A connection's `hello` names its server; the `BridgeServer` of that name checks the token and serves the connection.
An unknown server name is refused exactly like a wrong token (4001), so a peer cannot probe which servers exist.

On `/voice` (the browser profile), the handshake's `Origin` must be one of the voice page's origins (a page elsewhere
cannot use a visitor's invite), and the first message is a `browser_hello` whose one-time invite `redeem` turns into
the server and player the connection is, or refuses (4001, with the reason for the player).

Before any of that, the `Door` decides whether an accepted TCP connection may stay (caps, failed-hello bans), and
running out of file handles is logged once a minute while new connections wait (proximity_audio/door.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from host.extras import MissingExtraError
from host.speech.vad import silero_session
from proximity_audio.browser_protocol import VOICE_PATH, BrowserHello, SessionRefusedError, parse_browser_message
from proximity_audio.door import ACCEPT_BURST, Door, OutOfFileHandles, Ticket, effective_caps, open_file_limit
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import SUPPORTED_VERSIONS, CloseCode, Hello, ProtocolError, parse_client_message

if TYPE_CHECKING:
    from proximity_audio.bridge_server import BridgeServer

log = logging.getLogger(__name__)
# websockets logs every connection opened and closed at INFO: a flood of refused sockets would be a flood of lines.
# Plugins are logged by the bridge itself when their hello is accepted.
_WEBSOCKETS_LOG = logging.getLogger(f"{__name__}.websockets")
_WEBSOCKETS_LOG.setLevel(logging.WARNING)

# An invite -> (server, player); raises SessionRefusedError saying why it opens nothing.
Redeem = Callable[[str], tuple[str, str]]

BRIDGE_PATH = "/bridge"
# A close frame's reason is at most 123 bytes of UTF-8; a longer one fails the close itself (1011 and a traceback).
_MAX_REASON_BYTES = 123


def _refuse_all(_: str) -> tuple[str, str]:
    raise SessionRefusedError("voice pages are not enabled on this host")


class BridgeListener:
    def __init__(
        self,
        bridges: Iterable[BridgeServer],
        limits: BridgeLimits | None = None,
        *,
        redeem: Redeem = _refuse_all,
        page_origins: Collection[str] = (),
    ) -> None:
        """`page_origins`: the origins (`https://host[:port]`) voice pages are served from; `/voice` refuses others."""
        self._bridges = {bridge.server_name: bridge for bridge in bridges}
        self.limits = limits or BridgeLimits()
        self._redeem = redeem
        self._page_origins = frozenset(origin.lower() for origin in page_origins)
        self._ws_server: Server | None = None
        self.door: Door | None = None
        self._out_of_files: OutOfFileHandles | None = None
        self._tickets: dict[ServerConnection, Ticket] = {}

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
        """Listen on host:port (0 = any free port); the VAD model loads first, in a thread. Without the `voice`
        extra the bridge listens all the same: text chat and NPC voices work, microphone frames are refused."""
        try:
            await asyncio.to_thread(silero_session)
        except MissingExtraError as exc:
            log.warning("bridge: microphones are not heard (text chat and NPC voices work): %s", exc.message)
        limits = self.limits
        file_limit = open_file_limit()
        caps = effective_caps(limits, file_limit)
        if caps.unauthenticated < limits.max_unauthenticated or caps.connections < limits.max_connections:
            log.warning(
                "bridge: the open-file limit is %d, so at most %d connections without a hello and %d plugin "
                "connections are let in (raise it with ulimit -n for more)",
                file_limit,
                caps.unauthenticated,
                caps.connections,
            )
        door = self.door = Door(limits, caps)
        self._out_of_files = OutOfFileHandles(asyncio.get_running_loop())
        self._out_of_files.install()
        tickets = self._tickets

        class _AdmittedConnection(ServerConnection):
            """A connection the door may refuse as soon as TCP accepted it, before any byte is read."""

            refused = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                peer = transport.get_extra_info("peername")
                address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
                tcp = cast(asyncio.Transport, transport)
                ticket = door.admit(address, tcp.abort)
                if ticket is None:
                    # Refused before websockets sets anything up: no handler task, nothing to clean up but the socket.
                    self.refused = True
                    tcp.abort()
                    return
                tickets[self] = ticket
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                if self.refused:
                    return
                ticket = tickets.pop(self, None)
                if ticket is not None:
                    door.release(ticket)
                super().connection_lost(exc)

        self._ws_server = await serve(
            self._handle,
            host,
            port,
            create_connection=_AdmittedConnection,
            logger=_WEBSOCKETS_LOG,
            backlog=ACCEPT_BURST,
            process_request=self._check_request,
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
        if self._out_of_files is not None:
            self._out_of_files.uninstall()
            self._out_of_files = None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and _path(ws.request) == VOICE_PATH:
            await self._handle_page(ws)
            return
        hello = await self._handshake(ws)
        if hello is None:
            return
        bridge = self._bridges.get(hello.server)
        if bridge is None or not await bridge.accepts(hello):
            await self._refuse(ws, CloseCode.BAD_TOKEN, "bad token or server name")
            return
        if (refusal := bridge.memory.refusal()) is not None:
            bridge.memory.refused("connection")
            await ws.close(CloseCode.TRY_AGAIN_LATER, _close_reason(refusal))
            return
        if not await self._authenticate(ws):
            return
        await bridge.serve(ws, hello)

    async def _handle_page(self, ws: ServerConnection) -> None:
        hello = await self._first_message(ws, "browser_hello")
        if hello is None:
            return
        try:
            message = parse_browser_message(hello)
        except ProtocolError as exc:
            await self._refuse(ws, CloseCode.HELLO_EXPECTED, exc.message)
            return
        if not isinstance(message, BrowserHello):
            await self._refuse(
                ws, CloseCode.HELLO_EXPECTED, f"the first message must be browser_hello, got {message.type}"
            )
            return
        if not set(message.protocol_versions) & set(SUPPORTED_VERSIONS):
            await self._refuse(
                ws, CloseCode.UNSUPPORTED_VERSION, f"supported protocol versions: {list(SUPPORTED_VERSIONS)}"
            )
            return
        try:
            server, player = self._redeem(message.invite.get_secret_value())
        except SessionRefusedError as exc:
            log.info("bridge: refused a voice page: %s", exc)
            await self._refuse(ws, CloseCode.BAD_TOKEN, str(exc))  # guessing invites counts like guessing tokens
            return
        bridge = self._bridges.get(server)
        if bridge is None:
            await ws.close(CloseCode.BAD_TOKEN, "this server has no voice on this host")
            return
        if not await self._authenticate(ws):
            return
        await bridge.serve_page(ws, player)

    async def _authenticate(self, ws: ServerConnection) -> bool:
        """The connection said a valid hello: it leaves the door's unauthenticated count, unless the connections
        are at their cap (then it is closed, 1013, and False)."""
        ticket = self._tickets.get(ws)
        if ticket is None or self.door is None or self.door.authenticate(ticket):
            return True
        await ws.close(CloseCode.TRY_AGAIN_LATER, "the bridge has all the connections it takes")
        return False

    async def _refuse(self, ws: ServerConnection, code: int, reason: str) -> None:
        """Close a connection whose hello failed; the door counts it against the peer's address."""
        if self.door is not None:
            self.door.hello_failed(_address(ws), reason)
        await ws.close(code, _close_reason(reason))

    async def _first_message(self, ws: ServerConnection, expected: str) -> str | None:
        """The first text message within the hello timeout, else close (4003) and None."""
        try:
            async with asyncio.timeout(self.limits.hello_timeout_s):
                first = await ws.recv()
        except TimeoutError:
            await self._refuse(ws, CloseCode.HELLO_EXPECTED, f"no {expected} within the hello timeout")
            return None
        except ConnectionClosed:
            return None
        if not isinstance(first, str):
            await self._refuse(ws, CloseCode.HELLO_EXPECTED, f"the first message must be a JSON {expected}")
            return None
        return first

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = _path(request)
        if path == VOICE_PATH:
            origin = (request.headers.get("Origin") or "").lower()
            if origin not in self._page_origins:
                log.warning("bridge: refused a voice page from origin %r", origin[:100])
                return connection.respond(HTTPStatus.FORBIDDEN, "this origin may not open voice pages here\n")
            return None
        if path != BRIDGE_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"the voice bridge is at {BRIDGE_PATH}\n")
        return None

    async def _handshake(self, ws: ServerConnection) -> Hello | None:
        """The first message must be a hello with a supported version, else close."""
        first = await self._first_message(ws, "hello")
        if first is None:
            return None
        try:
            hello = parse_client_message(first)
        except ProtocolError as exc:
            await self._refuse(ws, CloseCode.HELLO_EXPECTED, exc.message)
            return None
        if not isinstance(hello, Hello):
            await self._refuse(ws, CloseCode.HELLO_EXPECTED, f"the first message must be hello, got {hello.type}")
            return None
        if not set(hello.protocol_versions) & set(SUPPORTED_VERSIONS):
            await self._refuse(
                ws, CloseCode.UNSUPPORTED_VERSION, f"supported protocol versions: {list(SUPPORTED_VERSIONS)}"
            )
            return None
        return hello


def _path(request: Request) -> str:
    return request.path.split("?", 1)[0]


def _address(ws: ServerConnection) -> str:
    peer = ws.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


def _close_reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
