"""The hub on Redis Streams: one stream per kind and server, one consumer group per role.

Entries stay in the stream until every group acked them: trimming only cuts below the oldest entry some group still
needs (docs/events.md, "Trimming"). Publishing retries through a Redis restart for `reconnect_timeout_s`; consumer
loops retry forever with backoff and re-read their own pending entries when the connection is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from host.bus.base import Bus
from host.bus.codec import encode
from host.bus.dead_letters import parse_dead_letter
from host.bus.dedupe import RedisDeduper
from host.bus.delivery import GroupReader
from host.bus.errors import BusUnavailableError
from host.bus.health import HealthHash
from host.bus.redis_connection import check_connection, redis_address, redis_client, redis_unavailable_as_bus_error
from host.bus.redis_reader import RedisGroupReader, wire_fields
from host.bus.reports import ConsumerInfo, DeadLetter, GroupInfo, PendingEntry, StreamInfo
from host.bus.streams import DEAD_LETTER_SUFFIX, carries_audio, dead_letter_stream
from host.config import BusSettings

if TYPE_CHECKING:
    from host.events import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0


class RedisBus(Bus):
    def __init__(self, url: str, settings: BusSettings | None = None, *, client_name: str | None = None) -> None:
        settings = settings or BusSettings()
        client = redis_client(url, settings, client_name=client_name)
        self._deduper = RedisDeduper(client, settings.key_prefix, settings.dedupe_ttl_s)
        super().__init__(settings, self._deduper)
        self.address = redis_address(client)
        self._client = client
        self._health = HealthHash(client, settings.key_prefix, self.address)
        self._unsent_trim: dict[str, int] = {}

    async def connect(self) -> None:
        """Fail fast, in one line naming host:port, when Redis cannot be used."""
        await check_connection(self._client)

    def _key(self, stream: str) -> str:
        return self.settings.key_prefix + stream

    async def publish(self, stream: str, event: Event) -> str:
        fields = encode(event)
        key = self._key(stream)
        entry_id: Any = await self._retrying(lambda: self._client.xadd(key, wire_fields(fields)))
        await self._count_for_trim(stream, 1)
        return str(entry_id.decode())

    async def publish_many(self, stream: str, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        key = self._key(stream)
        batch = [encode(event) for event in events]

        async def send() -> list[bytes]:
            async with self._client.pipeline(transaction=False) as pipe:
                for fields in batch:
                    pipe.xadd(key, wire_fields(fields))
                result: list[bytes] = await pipe.execute()
                return result

        entry_ids = await self._retrying(send)
        await self._count_for_trim(stream, len(events))
        return [entry_id.decode() for entry_id in entry_ids]

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Retry through a Redis restart. A retried XADD may land twice; consumers dedupe by event id."""
        deadline = time.monotonic() + self.settings.reconnect_timeout_s
        delay = _RETRY_FIRST_S
        while True:
            try:
                return await operation()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if self._closed or time.monotonic() + delay > deadline:
                    raise BusUnavailableError(
                        f"Redis at {self.address} unreachable for {self.settings.reconnect_timeout_s:g}s: {exc}"
                    ) from None
                logger.warning("publish to Redis at %s failed (%s); retrying in %.2fs", self.address, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    def _maxlen(self, stream: str) -> int:
        return self.settings.maxlen_audio if carries_audio(stream) else self.settings.maxlen

    async def _count_for_trim(self, stream: str, published: int) -> None:
        count = self._unsent_trim.get(stream, 0) + published
        # Checked at least every tenth of the cap: an audio stream holds at most about 1.1 times its cap once handled.
        if count < min(self.settings.trim_every, max(1, self._maxlen(stream) // 10)):
            self._unsent_trim[stream] = count
            return
        self._unsent_trim[stream] = 0
        try:
            await self.trim(stream)
        except (RedisError, BusUnavailableError) as exc:
            logger.warning("trimming %s failed (%s); the next publishes try again", stream, exc)

    async def trim(self, stream: str) -> int:
        """Cut the stream's head that every group has acked, once it is longer than `maxlen` (`maxlen_audio` for the
        streams carrying audio); returns entries cut.

        Approximate (`MINID ~`): Redis cuts whole internal nodes, never past the given id, so nothing still pending
        or not yet delivered to some group is dropped. A stream without groups is capped at `maxlen` instead.
        """
        key = self._key(stream)
        maxlen = self._maxlen(stream)
        if await self._client.xlen(key) <= maxlen:
            return 0
        groups: list[dict[str, Any]] = await self._client.xinfo_groups(key)
        if not groups:
            trimmed: int = await self._client.xtrim(key, maxlen=maxlen, approximate=True)
            return trimmed
        floor = min([await self._oldest_needed(key, group) for group in groups])
        trimmed = await self._client.xtrim(key, minid=f"{floor[0]}-{floor[1]}", approximate=True)
        return trimmed

    async def _oldest_needed(self, key: str, group: dict[str, Any]) -> tuple[int, int]:
        """The oldest entry id the group may still need: its oldest pending, else the one after its last delivery."""
        if group["pending"]:
            summary = await self._client.xpending(key, group["name"])
            return _parse_id(summary["min"])
        ms, seq = _parse_id(group["last-delivered-id"])
        return ms, seq + 1

    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        if not entry_ids:
            return 0
        with redis_unavailable_as_bus_error(self.address):
            acked: int = await self._client.xack(self._key(stream), group, *entry_ids)
        return acked

    async def pending(self, stream: str, group: str, *, count: int = 100) -> list[PendingEntry]:
        with redis_unavailable_as_bus_error(self.address):
            try:
                rows: list[dict[str, Any]] = await self._client.xpending_range(
                    self._key(stream), group, "-", "+", count
                )
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return []
                raise
        return [
            PendingEntry(
                entry_id=row["message_id"].decode(),
                consumer=row["consumer"].decode(),
                idle_ms=int(row["time_since_delivered"]),
                deliveries=int(row["times_delivered"]),
            )
            for row in rows
        ]

    async def stream_info(self, stream: str) -> StreamInfo:
        key = self._key(stream)
        with redis_unavailable_as_bus_error(self.address):
            length: int = await self._client.xlen(key)
            dead: int = await self._client.xlen(dead_letter_stream(key))
            try:
                raw_groups: list[dict[str, Any]] = await self._client.xinfo_groups(key)
            except ResponseError:  # no such key: nothing published or consumed yet
                raw_groups = []
            groups = [await self._group_info(key, raw) for raw in raw_groups]
        return StreamInfo(stream=stream, length=length, groups=groups, dead_letters=dead)

    async def streams(self) -> list[str]:
        # SCAN walks the whole database, a few hundred keys per round trip: fine for a command a person runs, which
        # is why the health reports (read by a health check every few seconds) live in one hash instead.
        pattern = _glob_escape(self.settings.key_prefix) + "npc:*"
        with redis_unavailable_as_bus_error(self.address):
            try:
                keys = [key async for key in self._client.scan_iter(match=pattern, count=1000, _type="stream")]
            except ResponseError as exc:  # SCAN ... TYPE needs Redis 6; or the user may not scan (ACL)
                raise BusUnavailableError(f"Redis at {self.address} cannot list the streams: {exc}") from exc
        names = {key.decode().removeprefix(self.settings.key_prefix) for key in keys}
        return sorted(name for name in names if not name.endswith(DEAD_LETTER_SUFFIX))

    async def _group_info(self, key: str, raw: dict[str, Any]) -> GroupInfo:
        consumers: list[dict[str, Any]] = await self._client.xinfo_consumers(key, raw["name"])
        return GroupInfo(
            name=raw["name"].decode(),
            consumers=[
                ConsumerInfo(name=c["name"].decode(), pending=int(c["pending"]), idle_ms=int(c["idle"]))
                for c in consumers
            ],
            pending=int(raw["pending"]),
            lag=None if raw.get("lag") is None else int(raw["lag"]),
            last_delivered_id=raw["last-delivered-id"].decode(),
        )

    async def dead_letters(self, stream: str, *, count: int = 100) -> list[DeadLetter]:
        dead_key = dead_letter_stream(self._key(stream))
        with redis_unavailable_as_bus_error(self.address):
            entries: Any = await self._client.xrange(dead_key, count=count)
        return [
            parse_dead_letter(entry_id.decode(), dead_letter_stream(stream), fields) for entry_id, fields in entries
        ]

    async def put_health(self, process: str, report: str, ttl_s: float) -> None:
        await self._health.put(process, report, ttl_s)

    async def health_reports(self) -> list[str]:
        return await self._health.reports()

    async def _close(self) -> None:
        await self._client.aclose()

    def _group_reader(self, stream: str, group: str, consumer: str) -> GroupReader:
        key = self._key(stream)
        max_block_ms = max(int(self.settings.socket_timeout_s * 1000) - 1000, 1)
        return RedisGroupReader(
            client=self._client,
            deduper=self._deduper,
            address=self.address,
            key=key,
            dead_key=dead_letter_stream(key),
            stream=stream,
            group=group,
            consumer=consumer,
            max_block_ms=max_block_ms,
        )


def _parse_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.decode().partition("-")
    return int(ms), int(seq or 0)


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis glob pattern (a key prefix may hold `*`, `?`, `[`)."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
