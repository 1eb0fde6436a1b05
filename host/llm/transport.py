"""HTTP plumbing shared by the remote backends: clients per event loop, timeouts, and transport errors as data."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import httpx

ClientT = TypeVar("ClientT")

# A dead peer should fail fast; a model that is slow to start (Ollama loading weights) may take the read timeout.
CONNECT_TIMEOUT_S = 5.0
ERROR_BODY_LIMIT = 4096
# Far above any real stream event (a chat chunk is a few hundred bytes); below it, a peer cannot exhaust memory.
MAX_LINE_CHARS = 1 << 20
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def http_timeout(read_timeout_s: float) -> httpx.Timeout:
    """Connect fast, then allow `read_timeout_s` between any two chunks of a streamed reply."""
    return httpx.Timeout(read_timeout_s, connect=min(CONNECT_TIMEOUT_S, read_timeout_s))


class LoopBoundClient(Generic[ClientT]):
    """One client per running event loop: httpx connection pools must not cross loops (tests run one per test)."""

    def __init__(self, make: Callable[[], ClientT], close: Callable[[ClientT], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._current: tuple[asyncio.AbstractEventLoop, ClientT] | None = None

    def get(self) -> ClientT:
        loop = asyncio.get_running_loop()
        if self._current is None or self._current[0] is not loop:
            self._current = (loop, self._make())
        return self._current[1]

    async def aclose(self) -> None:
        if self._current is not None and self._current[0] is asyncio.get_running_loop():
            await self._close(self._current[1])
        self._current = None


def describe_transport_error(exc: httpx.TransportError, read_timeout_s: float) -> tuple[str, bool]:
    """A human detail for a failed connection or read, and whether trying again may help."""
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or 'connection refused'}); is the server running?", True
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out", True
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data for {read_timeout_s:g} s", True
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"connection broke off mid-reply ({exc or type(exc).__name__})", True
    return f"{type(exc).__name__}: {exc}", True


async def read_error_body(response: httpx.Response) -> str:
    """At most ERROR_BODY_LIMIT bytes of an error response, never trusting a declared length."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= ERROR_BODY_LIMIT:
            break
    return body[:ERROR_BODY_LIMIT].decode("utf-8", errors="replace").strip()


class LineTooLongError(ValueError):
    """A streamed body sent more than the line limit without a line break."""


async def bounded_lines(response: httpx.Response, limit: int = MAX_LINE_CHARS) -> AsyncIterator[str]:
    """The lines of a streamed body (LF, CRLF or CR ends one), never buffering more than `limit` characters:
    httpx's own `aiter_lines` waits for a line break however much arrives before it."""
    pending = ""
    async for text in response.aiter_text():
        buffer = pending + text
        # A trailing CR may be the first half of a CRLF: keep it until the next piece shows.
        cut = len(buffer) - 1 if buffer.endswith("\r") else len(buffer)
        *lines, pending = _LINE_BREAK.split(buffer[:cut])
        pending += buffer[cut:]
        for line in lines:
            yield line
        if len(pending) > limit:
            raise LineTooLongError(f"a stream line ran past {limit} characters without a line break")
    if pending:
        yield pending.removesuffix("\r")
