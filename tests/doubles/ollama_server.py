"""A scripted Ollama server on a real 127.0.0.1 socket, speaking Ollama's documented HTTP API.

No Ollama binary installs here, so the Ollama backend (and anything built on it, such as persona turns) is tested
against this double through the official `ollama` client, unchanged.

Wire format (ollama/ollama `docs/api.md`, "Generate a chat completion"):

    POST /api/chat  {"model", "messages": [{"role", "content"}], "stream" (default true), "options", "keep_alive"}
      200, Content-Type: application/x-ndjson, chunked; one JSON object per line:
        {"model", "created_at", "message": {"role": "assistant", "content": "<piece>"}, "done": false}
        ...and last:
        {"model", "created_at", "message": {"role": "assistant", "content": ""}, "done": true,
         "done_reason": "stop" | "length", "total_duration", "load_duration", "prompt_eval_count",
         "prompt_eval_duration", "eval_count", "eval_duration"}
      "stream": false: one object with the whole content and "done": true.
      Errors: `{"error": "..."}` with a 4xx/5xx status (404 for an unknown model, 400 for a bad body), or as a line
      part way through a stream when generation fails.
    GET /api/tags     {"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}
    GET /api/version  {"version": "..."}
    GET /             "Ollama is running"

Usage:

    async with OllamaWireServer(replies=["Hello there. [happy] Fine day!"]) as srv:
        llm = OllamaLLM(url=srv.url, model="double")          # any client pointed at srv.url
        ...
        assert srv.chat_bodies[0]["options"]["temperature"] == 0.2

Scripting:

- `replies`: each /api/chat call that is served consumes the next reply, in order. A reply is a string, streamed in
  word-sized pieces that carry their leading whitespace (joining the pieces gives the string back), or a sequence of
  strings, streamed as exactly those pieces. A call after the last reply gets HTTP 500 naming the problem.
- Options are honoured as a model would: `num_predict` caps the number of pieces (`done_reason` "length"), `stop`
  cuts the reply before the first stop string.
- `chunk_delay_s`: sleep before each piece (latency, cancellation and read-timeout tests).
- `faults`: the i-th /api/chat call meets `faults[i]` (None or past the end: served normally).
  `HttpFault(status, error)` answers with that status and Ollama's error body and consumes no reply;
  `CloseMidStream(after_pieces)` streams that many pieces of the next reply, then drops the connection with the
  chunked body unfinished; `ErrorLine(after_pieces, error)` streams pieces, then an `{"error": ...}` line.
- `models`: the model names the server has (listed by /api/tags); a chat naming another model gets Ollama's 404.
  None accepts any model name.

Record: `srv.requests` holds every request received (method, path, headers, parsed JSON body) in arrival order;
`srv.chat_bodies` the JSON bodies of the /api/chat calls.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import h11

MAX_BODY_BYTES = 8 * 1024 * 1024
_WORD_BOUNDARY = re.compile(r"(?<=\S)(?=\s)")


@dataclass(frozen=True)
class HttpFault:
    """Answer the call with this HTTP status and Ollama's `{"error": ...}` body."""

    status: int = 500
    error: str = "llama runner process has terminated: exit status 2"


@dataclass(frozen=True)
class CloseMidStream:
    """Stream `after_pieces` pieces, then drop the connection without finishing the chunked body."""

    after_pieces: int = 1


@dataclass(frozen=True)
class ErrorLine:
    """Stream `after_pieces` pieces, then an `{"error": ...}` line, as Ollama does when generation fails."""

    after_pieces: int = 1
    error: str = "an error was encountered while running the model"


Fault = HttpFault | CloseMidStream | ErrorLine


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The parsed JSON body; None when the request had no body or it was not JSON."""


def split_into_pieces(text: str) -> list[str]:
    """Word-sized pieces that start with their leading whitespace, like a token stream; joined they give `text`."""
    return [piece for piece in _WORD_BOUNDARY.split(text) if piece]


class OllamaWireServer:
    """See the module docstring: an async context manager with `url`, `requests` and `chat_bodies`."""

    def __init__(
        self,
        replies: Sequence[str | Sequence[str]] = (),
        *,
        models: Sequence[str] | None = None,
        chunk_delay_s: float = 0.0,
        faults: Sequence[Fault | None] = (),
        version: str = "0.12.6",
    ) -> None:
        self._replies = [split_into_pieces(r) if isinstance(r, str) else list(r) for r in replies]
        self._models = list(models) if models is not None else None
        self._chunk_delay_s = chunk_delay_s
        self._faults = list(faults)
        self._version = version
        self._chat_calls = 0
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.requests: list[RecordedRequest] = []
        self.url = ""

    @property
    def chat_bodies(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/api/chat"]

    @property
    def replies_left(self) -> int:
        return len(self._replies)

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

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                received = await _read_request(conn, reader)
                if received is None:
                    return
                keep_open = await self._respond(conn, writer, *received)
                if not keep_open or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            writer.close()
            if task is not None:
                self._connections.pop(task, None)

    async def _respond(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request, raw: bytes
    ) -> bool:
        """Answer one request; False when the connection was dropped on purpose."""
        method, path = request.method.decode(), request.target.decode().split("?", 1)[0]
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        body: Any = None
        body_error: str | None = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                body_error = f"invalid JSON body: {exc}"
        self.requests.append(RecordedRequest(method, path, headers, body))

        if (method, path) == ("GET", "/"):
            await _send_plain(conn, writer, 200, "Ollama is running")
        elif (method, path) == ("GET", "/api/version"):
            await _send_json(conn, writer, 200, {"version": self._version})
        elif (method, path) == ("GET", "/api/tags"):
            await _send_json(conn, writer, 200, {"models": [_tag(name) for name in self._models or ()]})
        elif (method, path) == ("POST", "/api/chat"):
            return await self._chat(conn, writer, body, body_error)
        else:
            await _send_plain(conn, writer, 404, "404 page not found")
        return True

    async def _chat(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, body: Any, body_error: str | None
    ) -> bool:
        call = self._chat_calls
        self._chat_calls += 1
        fault = self._faults[call] if call < len(self._faults) else None
        if body_error is not None or not isinstance(body, dict):
            await _send_json(conn, writer, 400, {"error": body_error or "request body must be a JSON object"})
            return True
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await _send_json(conn, writer, 400, {"error": "model is required"})
            return True
        if isinstance(fault, HttpFault):
            await _send_json(conn, writer, fault.status, {"error": fault.error})
            return True
        if self._models is not None and model not in self._models and f"{model}:latest" not in self._models:
            await _send_json(conn, writer, 404, {"error": f'model "{model}" not found, try pulling it first'})
            return True
        if not self._replies:
            error = f"OllamaWireServer: no scripted reply left for /api/chat call {call + 1}"
            await _send_json(conn, writer, 500, {"error": error})
            return True

        started = time.perf_counter_ns()
        options = body.get("options") or {}
        pieces, done_reason = _apply_options(self._replies.pop(0), options)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        if body.get("stream", True) is False:
            final = _chunk(model, "".join(pieces), done=True)
            final.update(_stats(done_reason, prompt_tokens, len(pieces), started))
            await _send_json(conn, writer, 200, final)
            return True

        headers = [(b"content-type", b"application/x-ndjson"), (b"transfer-encoding", b"chunked")]
        await _send(conn, writer, h11.Response(status_code=200, headers=headers))
        for index, piece in enumerate(pieces):
            if isinstance(fault, CloseMidStream) and index == fault.after_pieces:
                writer.close()
                return False
            if isinstance(fault, ErrorLine) and index == fault.after_pieces:
                await _send_line(conn, writer, {"error": fault.error})
                await _send(conn, writer, h11.EndOfMessage())
                return True
            if self._chunk_delay_s and await self._closed_during(self._chunk_delay_s):
                writer.close()
                return False
            await _send_line(conn, writer, _chunk(model, piece, done=False))
        final = _chunk(model, "", done=True)
        final.update(_stats(done_reason, prompt_tokens, len(pieces), started))
        await _send_line(conn, writer, final)
        await _send(conn, writer, h11.EndOfMessage())
        return True

    async def _closed_during(self, seconds: float) -> bool:
        """Wait `seconds`, or less when the server shuts down (then True)."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _apply_options(pieces: list[str], options: dict[str, Any]) -> tuple[list[str], str]:
    done_reason = "stop"
    stops = [s for s in options.get("stop") or [] if s]
    text = "".join(pieces)
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    if cut >= 0:
        kept: list[str] = []
        length = 0
        for piece in pieces:
            if length + len(piece) >= cut:
                if cut > length:
                    kept.append(piece[: cut - length])
                break
            kept.append(piece)
            length += len(piece)
        pieces = kept
    limit = options.get("num_predict")
    if isinstance(limit, int) and 0 <= limit < len(pieces):
        pieces, done_reason = pieces[:limit], "length"
    return pieces, done_reason


def _chunk(model: str, content: str, *, done: bool) -> dict[str, Any]:
    created_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    message = {"role": "assistant", "content": content}
    return {"model": model, "created_at": created_at, "message": message, "done": done}


def _stats(done_reason: str, prompt_tokens: int, pieces: int, started_ns: int) -> dict[str, Any]:
    total = time.perf_counter_ns() - started_ns
    return {
        "done_reason": done_reason,
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": total // 4,
        "eval_count": pieces,
        "eval_duration": total - total // 4,
    }


def _tag(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-01-01T00:00:00Z",
        "size": 0,
        "digest": "0" * 64,
        "details": {"format": "gguf", "family": "double", "parameter_size": "0B", "quantization_level": "Q4_1"},
    }


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request, bytes] | None:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise h11.RemoteProtocolError(f"request body over {MAX_BODY_BYTES} bytes")
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        writer.write(data)
        await writer.drain()


async def _send_line(conn: h11.Connection, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    await _send(conn, writer, h11.Data(data=json.dumps(obj).encode() + b"\n"))


async def _send_body(conn: h11.Connection, writer: asyncio.StreamWriter, status: int, ctype: str, data: bytes) -> None:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())]
    await _send(conn, writer, h11.Response(status_code=status, headers=headers))
    await _send(conn, writer, h11.Data(data=data))
    await _send(conn, writer, h11.EndOfMessage())


async def _send_json(conn: h11.Connection, writer: asyncio.StreamWriter, status: int, obj: dict[str, Any]) -> None:
    await _send_body(conn, writer, status, "application/json; charset=utf-8", json.dumps(obj).encode())


async def _send_plain(conn: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str) -> None:
    await _send_body(conn, writer, status, "text/plain; charset=utf-8", text.encode())
