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
- `reply_for`: instead of the order of the calls, the request picks the reply: `reply_for(body)` returns it (for
  scenes where the host may also make calls it later discards, e.g. a speculative turn).
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

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.doubles.http_server import Exchange, RecordedRequest, ScriptedHttpServer

__all__ = [
    "CloseMidStream",
    "ErrorLine",
    "Fault",
    "HttpFault",
    "OllamaWireServer",
    "RecordedRequest",
    "split_into_pieces",
]

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


def split_into_pieces(text: str) -> list[str]:
    """Word-sized pieces that start with their leading whitespace, like a token stream; joined they give `text`."""
    return [piece for piece in _WORD_BOUNDARY.split(text) if piece]


class OllamaWireServer(ScriptedHttpServer):
    """See the module docstring: an async context manager with `url`, `requests` and `chat_bodies`."""

    def __init__(
        self,
        replies: Sequence[str | Sequence[str]] = (),
        *,
        models: Sequence[str] | None = None,
        chunk_delay_s: float = 0.0,
        faults: Sequence[Fault | None] = (),
        version: str = "0.12.6",
        reply_for: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        super().__init__()
        self._reply_for = reply_for
        self._replies = [split_into_pieces(r) if isinstance(r, str) else list(r) for r in replies]
        self._models = list(models) if models is not None else None
        self._chunk_delay_s = chunk_delay_s
        self._faults = list(faults)
        self._version = version
        self._chat_calls = 0

    @property
    def chat_bodies(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/api/chat"]

    @property
    def replies_left(self) -> int:
        return len(self._replies)

    async def respond(self, exchange: Exchange) -> None:
        request = exchange.request
        route = (request.method, request.path)
        if route == ("GET", "/"):
            await exchange.send_text(200, "Ollama is running")
        elif route == ("GET", "/api/version"):
            await exchange.send_json(200, {"version": self._version})
        elif route == ("GET", "/api/tags"):
            await exchange.send_json(200, {"models": [_tag(name) for name in self._models or ()]})
        elif route == ("POST", "/api/chat"):
            await self._chat(exchange)
        else:
            await exchange.send_text(404, "404 page not found")

    async def _chat(self, exchange: Exchange) -> None:
        call = self._chat_calls
        self._chat_calls += 1
        fault = self._faults[call] if call < len(self._faults) else None
        body = exchange.request.body
        if not isinstance(body, dict):
            error = exchange.request.body_error or "request body must be a JSON object"
            await exchange.send_json(400, {"error": error})
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await exchange.send_json(400, {"error": "model is required"})
            return
        if isinstance(fault, HttpFault):
            await exchange.send_json(fault.status, {"error": fault.error})
            return
        if self._models is not None and model not in self._models and f"{model}:latest" not in self._models:
            await exchange.send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        if self._reply_for is not None:
            self._replies.append(split_into_pieces(self._reply_for(body)))
        if not self._replies:
            error = f"OllamaWireServer: no scripted reply left for /api/chat call {call + 1}"
            await exchange.send_json(500, {"error": error})
            return

        started = time.perf_counter_ns()
        pieces, done_reason = _apply_options(self._replies.pop(0), body.get("options") or {})
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        if body.get("stream", True) is False:
            final = _chunk(model, "".join(pieces), done=True)
            final.update(_stats(done_reason, prompt_tokens, len(pieces), started))
            await exchange.send_json(200, final)
            return

        await exchange.start_stream("application/x-ndjson")
        for index, piece in enumerate(pieces):
            if isinstance(fault, CloseMidStream) and index == fault.after_pieces:
                exchange.drop()
                return
            if isinstance(fault, ErrorLine) and index == fault.after_pieces:
                await exchange.send_chunk(_line({"error": fault.error}))
                await exchange.end_stream()
                return
            if self._chunk_delay_s and await self.pause(self._chunk_delay_s):
                exchange.drop()
                return
            await exchange.send_chunk(_line(_chunk(model, piece, done=False)))
        final = _chunk(model, "", done=True)
        final.update(_stats(done_reason, prompt_tokens, len(pieces), started))
        await exchange.send_chunk(_line(final))
        await exchange.end_stream()


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


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"
