"""A scripted OpenAI-compatible server on a real 127.0.0.1 socket, for the failure modes a real server will not show.

Wire format (OpenAI chat completions, streaming):

    POST {base}/chat/completions  {"model", "messages", "stream": true, "temperature", "max_tokens", "stop", "seed"}
      200, Content-Type: text/event-stream; events separated by a blank line:
        data: {"id", "object": "chat.completion.chunk", "created", "model",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "<piece>"}, "finish_reason": null}]}
        ...
        data: {... "choices": [{"index": 0, "delta": {}, "finish_reason": "stop" | "length"}]}
        data: [DONE]
      Errors: `{"error": {"message", "type", "code"}}` with a 4xx/5xx status, or as a `data:` event mid-stream.

Usage: `async with OpenAIWireServer(replies=["Hello there."]) as srv:` and point a client at `srv.base_url`
(`.../v1`). Replies stream in word-sized pieces (see `ollama_server.split_into_pieces`), `max_tokens` caps them.
`faults[i]` applies to the i-th chat call: `HttpFault`, `CloseMidStream` and `ErrorLine` as in the Ollama double,
plus `MalformedEvent` (a `data:` line that is not JSON), `NoFinish` (the stream ends without a finish reason or
`[DONE]`) and `EndlessLine` (a line that never ends). With `api_key` set, a request without
`Authorization: Bearer <api_key>` gets 401 and an error message that echoes the key it was sent, as some servers do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.doubles.http_server import Exchange, ScriptedHttpServer
from tests.doubles.ollama_server import CloseMidStream, ErrorLine, HttpFault, split_into_pieces


@dataclass(frozen=True)
class MalformedEvent:
    """Stream `after_pieces` pieces, then a `data:` line that is not JSON."""

    after_pieces: int = 1


@dataclass(frozen=True)
class NoFinish:
    """Stream every piece, then end the body without a finish reason or `[DONE]`."""


@dataclass(frozen=True)
class EndlessLine:
    """Stream `after_pieces` pieces, then bytes without a line break until the client hangs up (or `max_bytes`)."""

    after_pieces: int = 1
    max_bytes: int = 64 << 20


OpenAIFault = HttpFault | CloseMidStream | ErrorLine | MalformedEvent | NoFinish | EndlessLine


class OpenAIWireServer(ScriptedHttpServer):
    """See the module docstring: `base_url`, `requests`, `chat_bodies`."""

    def __init__(
        self,
        replies: Sequence[str | Sequence[str]] = (),
        *,
        faults: Sequence[OpenAIFault | None] = (),
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self._replies = [split_into_pieces(r) if isinstance(r, str) else list(r) for r in replies]
        self._faults = list(faults)
        self._api_key = api_key
        self._chat_calls = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def chat_bodies(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    async def respond(self, exchange: Exchange) -> None:
        request = exchange.request
        if (request.method, request.path) != ("POST", "/v1/chat/completions"):
            await exchange.send_json(404, _error(f"Unknown request URL: {request.method} {request.path}", 404))
            return
        call = self._chat_calls
        self._chat_calls += 1
        fault = self._faults[call] if call < len(self._faults) else None
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._api_key is not None and sent != self._api_key:
            await exchange.send_json(401, _error(f"Incorrect API key provided: {sent}", 401))
            return
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            await exchange.send_json(400, _error(request.body_error or "'messages' is a required property", 400))
            return
        if isinstance(fault, HttpFault):
            await exchange.send_json(fault.status, _error(fault.error, fault.status))
            return
        if not self._replies:
            await exchange.send_json(500, _error(f"OpenAIWireServer: no scripted reply left for call {call + 1}", 500))
            return
        await self._stream(exchange, body, fault)

    async def _stream(self, exchange: Exchange, body: dict[str, Any], fault: OpenAIFault | None) -> None:
        pieces = self._replies.pop(0)
        finish_reason = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit < len(pieces):
            pieces, finish_reason = pieces[:limit], "length"
        model = str(body.get("model", ""))
        await exchange.start_stream("text/event-stream; charset=utf-8")
        for index, piece in enumerate(pieces):
            if isinstance(fault, CloseMidStream) and index == fault.after_pieces:
                exchange.drop()
                return
            if isinstance(fault, ErrorLine) and index == fault.after_pieces:
                await exchange.send_chunk(_event(_error(fault.error, 500)))
                await exchange.end_stream()
                return
            if isinstance(fault, MalformedEvent) and index == fault.after_pieces:
                await exchange.send_chunk(b'data: {"choices": [\n\n')
                await exchange.end_stream()
                return
            if isinstance(fault, EndlessLine) and index == fault.after_pieces:
                await self._endless_line(exchange, fault.max_bytes)
                return
            delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            await exchange.send_chunk(_event(_chunk(model, delta, None)))
        if not isinstance(fault, NoFinish):
            await exchange.send_chunk(_event(_chunk(model, {}, finish_reason)))
            await exchange.send_chunk(b"data: [DONE]\n\n")
        await exchange.end_stream()

    async def _endless_line(self, exchange: Exchange, max_bytes: int) -> None:
        block = b"x" * 65536
        await exchange.send_chunk(b'data: {"choices": "')
        for _ in range(max_bytes // len(block)):
            await exchange.send_chunk(block)  # raises ConnectionError once the client has hung up
        exchange.drop()


def _chunk(model: str, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-double",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _error(message: str, status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "code": status}}


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"
