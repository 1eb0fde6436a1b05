"""A real HTTP/1.1 server on 127.0.0.1 for test doubles (h11 on asyncio streams), with full control of the bytes.

A double subclasses `ScriptedHttpServer` and answers each request in `respond(exchange)`: whole bodies
(`send_json`, `send_text`), streamed bodies (`start_stream`, `send_chunk`, `end_stream`) or a connection dropped
part way (`drop`). Every request is recorded in `requests`, in arrival order.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import h11

MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The parsed JSON body; None when the request had no body or it was not JSON."""
    body_error: str | None = None
    """Why a non-empty body could not be parsed as JSON."""


class Exchange:
    """One request and the means to answer it."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, request: RecordedRequest) -> None:
        self._conn = conn
        self._writer = writer
        self.request = request
        self.dropped = False

    async def send_json(self, status: int, obj: Any) -> None:
        await self.send_body(status, "application/json; charset=utf-8", json.dumps(obj).encode())

    async def send_text(self, status: int, text: str) -> None:
        await self.send_body(status, "text/plain; charset=utf-8", text.encode())

    async def send_body(self, status: int, content_type: str, data: bytes) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
        await self._send(h11.Response(status_code=status, headers=headers))
        await self._send(h11.Data(data=data))
        await self._send(h11.EndOfMessage())

    async def start_stream(self, content_type: str, status: int = 200) -> None:
        """Start a chunked response; follow with `send_chunk` calls and `end_stream` (or `drop`)."""
        headers = [(b"content-type", content_type.encode()), (b"transfer-encoding", b"chunked")]
        await self._send(h11.Response(status_code=status, headers=headers))

    async def send_chunk(self, data: bytes) -> None:
        await self._send(h11.Data(data=data))

    async def end_stream(self) -> None:
        await self._send(h11.EndOfMessage())

    def drop(self) -> None:
        """Close the connection now, leaving any response unfinished."""
        self.dropped = True
        self._writer.close()

    async def _send(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data:
            self._writer.write(data)
            await self._writer.drain()


class ScriptedHttpServer:
    """Base of the doubles: `async with Double(...) as srv:` listens on a free port; `srv.url` is its address."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.requests: list[RecordedRequest] = []
        self.url = ""

    async def respond(self, exchange: Exchange) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve_connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is None:
            return
        self._server.close()
        self._closing.set()
        # Python 3.11's Server.close() leaves accepted connections open. Closing their transports ends each handler
        # through EOF; cancelling the handlers instead trips a 3.11 asyncio bug that logs spurious tracebacks.
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less when the server shuts down; True means it is shutting down."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(conn, reader)
                if request is None:
                    return
                self.requests.append(request)
                exchange = Exchange(conn, writer, request)
                await self.respond(exchange)
                if exchange.dropped or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            writer.close()
            if task is not None:
                self._connections.pop(task, None)


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> RecordedRequest | None:
    head: h11.Request | None = None
    raw = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            raw += event.data
            if len(raw) > MAX_BODY_BYTES:
                raise h11.RemoteProtocolError(f"request body over {MAX_BODY_BYTES} bytes")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            return _record(head, bytes(raw))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _record(head: h11.Request, raw: bytes) -> RecordedRequest:
    body: Any = None
    body_error: str | None = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            body_error = f"invalid JSON body: {exc}"
    headers = {name.decode().lower(): value.decode() for name, value in head.headers}
    path = head.target.decode().split("?", 1)[0]
    return RecordedRequest(head.method.decode(), path, headers, body, body_error)
