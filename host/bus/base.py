"""The `Bus` every role talks to: publish events on named streams, consume them through consumer groups.

Delivery is at least once: an entry is acked only after its handler returned, a failed entry stays pending and is
delivered again, and a dead consumer's entries are claimed by the others. Handlers therefore dedupe by event id,
which `consume` does for them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from host.bus.dedupe import Deduper
from host.config import BusSettings
from host.errors import NpcHostError
from host.events import Event, EventValidationError

Handler = Callable[[Event], Awaitable[None]]


class BusError(NpcHostError):
    code = "bus"


class BusConnectionError(BusError):
    """The hub cannot be reached at start (wrong URL, server down); the message names host:port, never a password."""

    code = "bus_connect"


class BusUnavailableError(BusError):
    """The connection was lost and did not come back in time."""

    code = "bus_unavailable"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a consumer: the event, or the reason it could not be decoded."""

    entry_id: str
    attempts: int
    event: Event | None
    error: EventValidationError | None = None
    fields: Mapping[bytes, bytes] | None = None  # the raw wire fields, kept for the dead-letter copy


@dataclass(frozen=True, slots=True)
class Rejection:
    delivery: Delivery
    code: str
    reason: str


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True)


class PendingEntry(_Report):
    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int


class ConsumerInfo(_Report):
    name: str
    pending: int
    idle_ms: int


class GroupInfo(_Report):
    name: str
    consumers: list[ConsumerInfo]
    pending: int
    lag: int | None  # entries not yet delivered to the group; None when Redis cannot tell
    last_delivered_id: str


class StreamInfo(_Report):
    stream: str
    length: int
    groups: list[GroupInfo]
    dead_letters: int


class DeadLetter(_Report):
    entry_id: str
    stream: str
    original_id: str
    group: str
    consumer: str
    code: str
    reason: str
    deliveries: int
    fields: dict[str, bytes]  # the original entry's fields, as they were


class Bus(ABC):
    """Publish/consume over named streams (see `host.bus.streams` for the names)."""

    def __init__(self, settings: BusSettings, deduper: Deduper) -> None:
        self.settings = settings
        self.deduper = deduper
        self._closed = False
        self._consumer_stops: set[asyncio.Event] = set()

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
        from host.bus.consumer import ConsumerLoop

        if batch < 1 or block_ms < 0:
            raise ValueError(f"batch must be >= 1 and block_ms >= 0 (got {batch}, {block_ms})")
        if self._closed:
            raise BusError("the bus is closed")
        stop = stop or asyncio.Event()
        reader = self._group_reader(stream, group, consumer)
        self._consumer_stops.add(stop)
        try:
            await ConsumerLoop(reader, self.deduper, handler, self.settings, batch=batch, block_ms=block_ms).run(stop)
        finally:
            self._consumer_stops.discard(stop)

    @abstractmethod
    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        """Acknowledge entries by hand; returns how many were pending."""

    @abstractmethod
    async def pending(self, stream: str, group: str, *, count: int = 100) -> list[PendingEntry]:
        """The oldest `count` entries delivered to the group but not acked."""

    @abstractmethod
    async def stream_info(self, stream: str) -> StreamInfo:
        """Length, groups, consumers, pending counts and lag, for `npc-host status`."""

    @abstractmethod
    async def dead_letters(self, stream: str, *, count: int = 100) -> list[DeadLetter]:
        """The oldest `count` entries parked in `<stream>:dead`."""

    async def aclose(self) -> None:
        """Stop every consumer loop of this bus (after its current handler) and release connections."""
        self._closed = True
        for stop in self._consumer_stops:
            stop.set()
        await self._close()

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    def _group_reader(self, stream: str, group: str, consumer: str) -> GroupReader: ...


class GroupReader(ABC):
    """The backend half of a consumer loop: the primitives Redis Streams offers, for one (stream, group, consumer)."""

    group: str
    consumer: str
    stream: str

    @abstractmethod
    async def ensure_group(self) -> None: ...

    @abstractmethod
    async def read_new(self, count: int, block_ms: int) -> list[Delivery]: ...

    @abstractmethod
    async def read_own_pending(self, after_id: str, count: int) -> list[Delivery]:
        """This consumer's pending entries with ids above `after_id` ("0" for all), oldest first."""

    @abstractmethod
    async def claim_idle(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over entries of any consumer of the group idle at least `min_idle_ms` (XAUTOCLAIM)."""

    @abstractmethod
    async def settle(self, handled_ids: Sequence[str], acked: Sequence[str], rejected: Sequence[Rejection]) -> None:
        """Mark `handled_ids` (event ids) as handled by the group, then ack `acked` (entry ids) and park `rejected`
        in the dead-letter stream (acking them too), in as few round trips as the backend allows."""
