"""Which events a consumer group has already handled, by event id (delivery is at least once)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


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
    """Handled ids in Redis SETs, one per group and window of `ttl_s` seconds: `{prefix}dedupe:{group}:{window}`.

    A window's set expires when the next window ends, so an id is remembered for `ttl_s` to `2 * ttl_s`. One set per
    window (instead of one key per id) keeps marking a whole batch to a single SADD.
    """

    def __init__(self, client: Redis, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _window(self) -> int:
        return int(time.time()) // self._ttl_s

    def _key(self, group: str, window: int) -> str:
        return f"{self._prefix}dedupe:{group}:{window}"

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        window = self._window()
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.smismember(self._key(group, window), list(event_ids))
            pipe.smismember(self._key(group, window - 1), list(event_ids))
            in_current, in_previous = await pipe.execute()
        return {
            event_id
            for event_id, current, previous in zip(event_ids, in_current, in_previous, strict=True)
            if current or previous
        }

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            self.queue_mark(pipe, group, event_ids)
            await pipe.execute()

    def queue_mark(self, pipe: Pipeline, group: str, event_ids: Sequence[str]) -> None:
        """Add the marking to a pipeline, so it travels with the XACK in one round trip."""
        if not event_ids:
            return
        window = self._window()
        key = self._key(group, window)
        pipe.sadd(key, *event_ids)
        pipe.expireat(key, (window + 2) * self._ttl_s)
