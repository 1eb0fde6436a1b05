"""An asyncio RCON client for one Minecraft server: one connection, one lock, never pipelined.

Why not `mcrcon`: see docs/minecraft.md ("Why a custom RCON client"). In short, mcrcon blocks, times out with
SIGALRM (main thread only), decides a reply is complete when the socket is momentarily empty, trusts the peer's
length field and never reconnects.

A command's reply may span several packets with no end marker, so after the first reply packet the client sends a
packet of an unknown type; vanilla answers it with "Unknown request <hex>" echoing its id, which marks the end. The
marker is sent only after the first reply arrived: by then the server has consumed the command in its own `read()`,
so the two requests never share one (vanilla would drop the connection).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn

from pydantic import SecretStr

from host import metrics
from host.errors import NpcHostError
from integrations.minecraft.rcon_packets import (
    MAX_REQUEST_BODY,
    MalformedPacketError,
    Packet,
    PacketType,
    encode_packet,
    read_packet,
    request_body_size,
)

log = logging.getLogger(__name__)

# Any type vanilla does not know; it answers with "Unknown request c8" carrying our id.
END_MARKER_TYPE = 200
AUTH_FAILED_ID = -1

CommandRunner = Callable[[str], Awaitable[str]]
ConnectHook = Callable[[CommandRunner], Awaitable[None]]


class RconError(NpcHostError):
    code = "rcon"


class RconAuthError(RconError):
    code = "rcon_auth"


class RconRequestTooLongError(RconError):
    code = "rcon_request_too_long"


class RconUnavailableError(RconError):
    """The server cannot be reached or dropped the connection; retried with backoff on later calls."""

    code = "rcon_unavailable"


class RconClient:
    """Runs commands on one server. Safe to share between tasks: commands run one at a time.

    `on_connect` hooks run after every successful (re)connection, before the command that triggered it, with a
    runner that executes commands under the lock already held (so bodies are back before anything else runs).
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: SecretStr,
        *,
        timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self._password = password
        self._timeout_s = timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._backoff_s = 0.0
        self._next_attempt_at = 0.0
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._hooks: list[ConnectHook] = []
        self.connections = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def retry_in_s(self) -> float:
        """Seconds until the next reconnect attempt is allowed (0 when connected or due)."""
        return max(0.0, self._next_attempt_at - time.monotonic())

    def add_connect_hook(self, hook: ConnectHook) -> None:
        self._hooks.append(hook)

    def remove_connect_hook(self, hook: ConnectHook) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    async def __aenter__(self) -> RconClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def command(self, command: str) -> str:
        """Run one command and return its whole reply (every packet of it)."""
        self._check_request(command)
        async with self._lock:
            await self._ensure_connected()
            return await self._run(command)

    async def connect(self) -> bool:
        """Connect now unless connected; True when this call connected (and so ran the connect hooks)."""
        async with self._lock:
            if self._is_open():
                return False
            await self._ensure_connected()
            return True

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    def _check_request(self, command: str) -> None:
        if "\x00" in command:
            # The server stops reading the body at the first NUL: the command would run truncated.
            raise RconError("an RCON command cannot contain a NUL character", code="rcon_bad_request")
        size = request_body_size(command)
        if size > MAX_REQUEST_BODY:
            raise RconRequestTooLongError(
                f"RCON command is {size} bytes; vanilla servers accept at most {MAX_REQUEST_BODY} "
                f"(command starts {command[:40]!r})"
            )

    def _is_open(self) -> bool:
        return self._reader is not None and not self._reader.at_eof()

    async def _ensure_connected(self) -> None:
        if self._is_open():
            return
        # Nothing was sent on a connection the server already closed, so reconnecting here is always safe.
        await self._disconnect()
        wait_s = self._next_attempt_at - time.monotonic()
        if wait_s > 0:
            raise RconUnavailableError(f"RCON {self.address} is unavailable; next attempt in {wait_s:.1f} s")
        try:
            await self._connect()
        except RconError:
            await self._disconnect()
            self._schedule_retry()
            raise
        except asyncio.CancelledError:
            # Cut short before the login was answered: the socket is open but not logged in, never reuse it.
            self._drop()
            raise
        self._backoff_s = 0.0
        self._next_attempt_at = 0.0
        for hook in self._hooks:
            await hook(self._run)

    async def _connect(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise RconUnavailableError(f"cannot connect to RCON at {self.address}: {_describe(exc)}") from None
        auth_id = next(self._ids)
        await self._send(auth_id, PacketType.AUTH, self._password.get_secret_value())
        packet = await self._read()
        if packet.type != PacketType.AUTH_RESPONSE:
            # Source-style servers send an empty RESPONSE_VALUE before the auth answer.
            packet = await self._read()
        if packet.request_id == AUTH_FAILED_ID:
            raise RconAuthError(f"RCON at {self.address} rejected the password")
        if packet.request_id != auth_id or packet.type != PacketType.AUTH_RESPONSE:
            raise RconError(f"RCON at {self.address} answered the login with an unexpected id", code="rcon_protocol")
        if self.connections:
            metrics.RCON_RECONNECTS.labels(address=self.address).inc()
        self.connections += 1
        log.info("RCON connected to %s", self.address)

    def _schedule_retry(self) -> None:
        self._backoff_s = min(self._backoff_max_s, max(self._backoff_initial_s, self._backoff_s * 2))
        self._next_attempt_at = time.monotonic() + self._backoff_s

    async def _run(self, command: str) -> str:
        """Run a command on the open connection; the caller holds the lock."""
        self._check_request(command)
        started = time.perf_counter()
        try:
            reply = await self._exchange(command)
        except asyncio.CancelledError:
            # Cancelled mid-reply, the rest of it would be read as the next command's answer: start afresh.
            self._drop()
            raise
        metrics.RCON_SECONDS.labels(address=self.address).observe(time.perf_counter() - started)
        return reply

    async def _exchange(self, command: str) -> str:
        request_id = next(self._ids)
        await self._send(request_id, PacketType.EXEC_COMMAND, command)
        first = await self._read()
        if first.request_id != request_id:
            await self._fail(f"RCON at {self.address} answered request {request_id} with id {first.request_id}")
        marker_id = next(self._ids)
        await self._send(marker_id, END_MARKER_TYPE, "")
        parts = [first.body]
        while (packet := await self._read()).request_id != marker_id:
            if packet.request_id != request_id:
                await self._fail(f"RCON at {self.address} sent a reply for unknown request {packet.request_id}")
            parts.append(packet.body)
        return "".join(parts)

    async def _send(self, request_id: int, packet_type: int, body: str) -> None:
        if self._writer is None:
            raise RconUnavailableError(f"RCON {self.address} is not connected")
        try:
            self._writer.write(encode_packet(request_id, packet_type, body))
            async with asyncio.timeout(self._timeout_s):
                await self._writer.drain()
        except (OSError, TimeoutError) as exc:
            await self._lost(exc)

    async def _read(self) -> Packet:
        if self._reader is None:
            raise RconUnavailableError(f"RCON {self.address} is not connected")
        try:
            async with asyncio.timeout(self._timeout_s):
                return await read_packet(self._reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self._lost(exc)
        except MalformedPacketError as exc:
            await self._fail(f"RCON at {self.address} sent a malformed packet: {exc}")

    async def _lost(self, exc: BaseException) -> NoReturn:
        await self._disconnect()
        self._schedule_retry()
        raise RconUnavailableError(f"RCON connection to {self.address} lost: {_describe(exc)}") from None

    async def _fail(self, message: str) -> NoReturn:
        # After a protocol error the stream position is unknown: only a fresh connection is safe.
        await self._disconnect()
        raise RconError(message, code="rcon_protocol")

    def _drop(self) -> asyncio.StreamWriter | None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
        return writer

    async def _disconnect(self) -> None:
        writer = self._drop()
        if writer is None:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            log.debug("RCON %s closed uncleanly", self.address)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
