"""HTTP plumbing shared by the remote backends: clients per event loop, timeouts, and transport errors as data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import httpx

ClientT = TypeVar("ClientT")

# A dead peer should fail fast; a model that is slow to start (Ollama loading weights) may take the read timeout.
CONNECT_TIMEOUT_S = 5.0
ERROR_BODY_LIMIT = 4096


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
