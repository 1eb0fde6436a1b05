"""Which events a consumer group has already handled, by event id (delivery is at least once)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from redis.asyncio import Redis


class Deduper(ABC):
    @abstractmethod
    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        """The ids among `event_ids` that `group` has handled."""

    @abstractmethod
    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        """Remember that `group` handled these ids."""


class MemoryDeduper(Deduper):
    """The `max_ids` most recently handled ids; older ones are long past any redelivery in one process."""

    def __init__(self, max_ids: int) -> None:
        self._max_ids = max_ids
        self._handled: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        return {event_id for event_id in event_ids if (group, event_id) in self._handled}

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self._handled[(group, event_id)] = None
            self._handled.move_to_end((group, event_id))
        while len(self._handled) > self._max_ids:
            self._handled.popitem(last=False)


class RedisDeduper(Deduper):
    """One key per handled id, `{prefix}dedupe:{group}:{id}`, expiring after `ttl_s` (shared by all processes)."""

    def __init__(self, client: Redis, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _key(self, group: str, event_id: str) -> str:
        return f"{self._prefix}dedupe:{group}:{event_id}"

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        values = await self._client.mget([self._key(group, event_id) for event_id in event_ids])
        return {event_id for event_id, value in zip(event_ids, values, strict=True) if value is not None}

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.set(self._key(group, event_id), b"1", ex=self._ttl_s)
            await pipe.execute()
