"""The event hub: `make_bus(settings)` gives the Redis hub when `NPC_HOST_REDIS_URL` is set, else the in-process one."""

from __future__ import annotations

from host.bus.base import Bus
from host.bus.delivery import Handler
from host.bus.errors import BusConnectionError, BusError, BusUnavailableError
from host.bus.memory import MemoryBus
from host.bus.redis_bus import RedisBus
from host.bus.reports import ConsumerInfo, DeadLetter, GroupInfo, PendingEntry, StreamInfo
from host.bus.streams import StreamKind, consumer_name, dead_letter_stream, stream_for, stream_name
from host.config import Settings


async def make_bus(settings: Settings, *, client_name: str | None = None) -> Bus:
    """The configured hub, connected: a wrong Redis URL raises `BusConnectionError` here, in one line."""
    if settings.redis_url is None:
        return MemoryBus(settings.bus)
    bus = RedisBus(settings.redis_url.get_secret_value(), settings.bus, client_name=client_name)
    await bus.connect()
    return bus


__all__ = [
    "Bus",
    "BusConnectionError",
    "BusError",
    "BusUnavailableError",
    "ConsumerInfo",
    "DeadLetter",
    "GroupInfo",
    "Handler",
    "MemoryBus",
    "PendingEntry",
    "RedisBus",
    "StreamInfo",
    "StreamKind",
    "consumer_name",
    "dead_letter_stream",
    "make_bus",
    "stream_for",
    "stream_name",
]
