"""The event hub: `make_bus(settings)` gives the Redis hub when `NPC_HOST_REDIS_URL` is set, else the in-process one.

The names below load on first use (PEP 562): importing one light module of the package, as `npc-host status --quiet`
does with `host.bus.health`, does not load the consumer loop, the in-process hub and the report models with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as `_MODULE_OF`, for the type checker (`X as X`: re-exported)
    from host.bus.base import Bus as Bus
    from host.bus.delivery import Handler as Handler
    from host.bus.errors import BusConnectionError as BusConnectionError
    from host.bus.errors import BusError as BusError
    from host.bus.errors import BusUnavailableError as BusUnavailableError
    from host.bus.memory import MemoryBus as MemoryBus
    from host.bus.redis_bus import RedisBus as RedisBus
    from host.bus.reports import ConsumerInfo as ConsumerInfo
    from host.bus.reports import DeadLetter as DeadLetter
    from host.bus.reports import GroupInfo as GroupInfo
    from host.bus.reports import PendingEntry as PendingEntry
    from host.bus.reports import StreamInfo as StreamInfo
    from host.bus.streams import StreamKind as StreamKind
    from host.bus.streams import consumer_name as consumer_name
    from host.bus.streams import dead_letter_stream as dead_letter_stream
    from host.bus.streams import stream_for as stream_for
    from host.bus.streams import stream_name as stream_name
    from host.config import Settings

_MODULE_OF = {
    "Bus": "host.bus.base",
    "Handler": "host.bus.delivery",
    "BusConnectionError": "host.bus.errors",
    "BusError": "host.bus.errors",
    "BusUnavailableError": "host.bus.errors",
    "MemoryBus": "host.bus.memory",
    "RedisBus": "host.bus.redis_bus",
    "ConsumerInfo": "host.bus.reports",
    "DeadLetter": "host.bus.reports",
    "GroupInfo": "host.bus.reports",
    "PendingEntry": "host.bus.reports",
    "StreamInfo": "host.bus.reports",
    "StreamKind": "host.bus.streams",
    "consumer_name": "host.bus.streams",
    "dead_letter_stream": "host.bus.streams",
    "stream_for": "host.bus.streams",
    "stream_name": "host.bus.streams",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


async def make_bus(settings: Settings, *, client_name: str | None = None) -> Bus:
    """The configured hub, connected: a wrong Redis URL raises `BusConnectionError` here, in one line."""
    if settings.redis_url is None:
        from host.bus.memory import MemoryBus

        return MemoryBus(settings.bus)
    from host.bus.redis_bus import RedisBus

    bus = RedisBus(settings.redis_url.get_secret_value(), settings.bus, client_name=client_name)
    await bus.connect()
    return bus
