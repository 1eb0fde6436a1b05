"""Helpers for the bus tests: run a consumer in the background, collect what it handled, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from host.bus import Bus, Handler
from host.config import BusSettings
from host.events import Event, PlayerSaid

# Generous bounds: a failing test reports after this, a passing one never waits for it.
WAIT_S = 20.0

# Short idle/retry times so redelivery and claims happen within a test.
TEST_BUS_SETTINGS = BusSettings(claim_idle_ms=300, retry_delay_ms=50, max_deliveries=3)


def said(text: str, server: str = "test") -> PlayerSaid:
    return PlayerSaid(server=server, player="Alex", text=text)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    await poll_until(lambda: _ready(condition()), what)


async def _ready(value: bool) -> bool:
    return value


async def poll_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll until `check` is true; fail naming `what` after WAIT_S (a bound, not a timing assertion)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.01)


class Collector:
    """A handler that records the events it got, optionally failing on some of them."""

    def __init__(self, fail: Callable[[Event], bool] = lambda _: False) -> None:
        self.events: list[Event] = []
        self.attempts: list[Event] = []
        self._fail = fail

    async def __call__(self, event: Event) -> None:
        self.attempts.append(event)
        if self._fail(event):
            raise RuntimeError(f"handler refuses {event.id}")
        self.events.append(event)

    @property
    def texts(self) -> list[str]:
        return [event.text for event in self.events if isinstance(event, PlayerSaid)]


@asynccontextmanager
async def consuming(
    bus: Bus, stream: str, group: str, consumer: str, handler: Handler, **options: int
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `bus.consume` as a task for the body of the block, then stop it and wait for it to return."""
    stop = asyncio.Event()
    options.setdefault("block_ms", 100)
    task = asyncio.create_task(bus.consume(stream, group, consumer, handler, stop=stop, **options))
    try:
        yield task
    finally:
        stop.set()
        if not task.done():
            async with asyncio.timeout(WAIT_S):
                await task
        elif not task.cancelled() and task.exception() is not None:
            raise AssertionError("the consumer loop crashed") from task.exception()
