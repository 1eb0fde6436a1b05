"""The `Bus` every role talks to: publish events on named streams, consume them through consumer groups.

Delivery is at least once: an entry is acked only after its handler returned, a failed entry stays pending and is
delivered again, and a dead consumer's entries are claimed by the others. Handlers therefore dedupe by event id,
which `consume` does for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from host.bus.consumer import ConsumerLoop
from host.bus.dedupe import Deduper
from host.bus.delivery import GroupReader, Handler
from host.bus.errors import BusError
from host.bus.reports import DeadLetter, PendingEntry, StreamInfo
from host.config import BusSettings

if TYPE_CHECKING:
    from host.events import Event


class Bus(ABC):
    """Publish/consume over named streams (see `host.bus.streams` for the names)."""

    def __init__(self, settings: BusSettings, deduper: Deduper) -> None:
        self.settings = settings
        self.deduper = deduper
        self._closed = False
        self._consumer_stops: list[asyncio.Event] = []  # one per running consume() call
        self._consumers_changed = asyncio.Condition()

    @abstractmethod
    async def publish(self, stream: str, event: Event) -> str:
        """Append an event; returns the entry id. Waits (backpressure or reconnect) rather than drop it."""

    @abstractmethod
    async def publish_many(self, stream: str, events: Sequence[Event]) -> list[str]:
        """Append several events in order, in one round trip where the backend allows it."""

    async def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        batch: int = 100,
        block_ms: int = 1000,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run `handler` on every event of `stream` for `group` until `stop` is set or the bus closes.

        The group is created if needed and starts at the oldest retained entry. This consumer's own pending entries
        come first, then entries claimed from consumers idle longer than `claim_idle_ms`, then new ones. Returns
        after the current handler finished; entries not yet handled stay pending for the next consumer.
        """
        if batch < 1 or block_ms < 1:
            raise ValueError(f"batch and block_ms must be >= 1 (got {batch}, {block_ms})")
        if self._closed:
            raise BusError("the bus is closed")
        stop = stop or asyncio.Event()
        reader = self._group_reader(stream, group, consumer)
        self._consumer_stops.append(stop)
        try:
            await ConsumerLoop(reader, self.deduper, handler, self.settings, batch=batch, block_ms=block_ms).run(stop)
        finally:
            self._consumer_stops.remove(stop)
            async with self._consumers_changed:
                self._consumers_changed.notify_all()

    @abstractmethod
    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        """Acknowledge entries by hand; returns how many were pending."""

    @abstractmethod
    async def pending(self, stream: str, group: str, *, count: int = 100) -> list[PendingEntry]:
        """The oldest `count` entries delivered to the group but not acked."""

    @abstractmethod
    async def streams(self) -> list[str]:
        """The names of the streams the hub holds (published to or consumed from; not dead letters), sorted."""

    @abstractmethod
    async def stream_info(self, stream: str) -> StreamInfo:
        """Length, groups, consumers, pending counts and lag, for `npc-host status`."""

    @abstractmethod
    async def dead_letters(self, stream: str, *, count: int = 100) -> list[DeadLetter]:
        """The oldest `count` entries parked in `<stream>:dead`."""

    @abstractmethod
    async def put_health(self, process: str, report: str, ttl_s: float) -> None:
        """Keep `report` (JSON, host/roles/health.py) as the health of `process` for `ttl_s` s (`npc-host status`)."""

    @abstractmethod
    async def health_reports(self) -> list[str]:
        """The health reports of every process that reported within its time to live."""

    async def aclose(self, *, drain_timeout_s: float = 10.0) -> None:
        """Stop every consumer loop of this bus, let each finish its handler and ack (for up to `drain_timeout_s`),
        then release the connections. Entries not handled by then stay pending for other consumers."""
        self._closed = True
        for stop in self._consumer_stops:
            stop.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout_s), self._consumers_changed:
                await self._consumers_changed.wait_for(lambda: not self._consumer_stops)
        await self._close()

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    def _group_reader(self, stream: str, group: str, consumer: str) -> GroupReader: ...
