"""One consumer's view of a Redis stream group: XREADGROUP, XAUTOCLAIM, XACK and the dead-letter stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from host.bus.codec import decode
from host.bus.dead_letters import dead_letter_fields
from host.bus.dedupe import RedisDeduper
from host.bus.delivery import Delivery, GroupReader, Rejection
from host.bus.redis_connection import redis_unavailable_as_bus_error
from host.errors import EventValidationError

RawEntry = tuple[bytes, Mapping[bytes, bytes] | None]
# How Redis says the stream or the group is gone: NOGROUP from reads and claims, UNBLOCKED to a read blocked on a key
# that was deleted, "no such key" from XINFO.
_STREAM_GONE = ("NOGROUP", "UNBLOCKED", "no such key")


def wire_fields(fields: Mapping[bytes, bytes]) -> dict[FieldT, EncodableT]:
    """The same fields, typed the way redis-py's XADD wants them."""
    return {name: value for name, value in fields.items()}


def to_delivery(entry_id: bytes, fields: Mapping[bytes, bytes] | None, attempts: int) -> Delivery:
    if not fields:
        return Delivery(entry_id=entry_id.decode(), attempts=attempts, event=None)
    try:
        event = decode(fields)
    except EventValidationError as exc:
        return Delivery(entry_id=entry_id.decode(), attempts=attempts, event=None, error=exc, fields=fields)
    return Delivery(entry_id=entry_id.decode(), attempts=attempts, event=event, fields=fields)


class RedisGroupReader(GroupReader):
    def __init__(
        self,
        *,
        client: Redis,
        deduper: RedisDeduper,
        address: str,
        key: str,
        dead_key: str,
        stream: str,
        group: str,
        consumer: str,
        max_block_ms: int,
    ) -> None:
        self._client = client
        self._deduper = deduper
        self._address = address
        self._key = key
        self._dead_key = dead_key
        self._max_block_ms = max_block_ms
        self._claim_cursor = "0-0"
        self.stream = stream
        self.group = group
        self.consumer = consumer

    async def ensure_group(self) -> None:
        with redis_unavailable_as_bus_error(self._address):
            try:
                await self._client.xgroup_create(self._key, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        # A block longer than the socket timeout would look like a dead connection.
        block = min(block_ms, self._max_block_ms) or None

        async def read() -> list[Delivery]:
            entries = await self._read(">", count, block)
            return [to_delivery(entry_id, fields, 1) for entry_id, fields in entries]

        return await self._unless_stream_gone(read)

    async def read_own_pending(self, after_id: str, count: int) -> list[Delivery]:
        async def read() -> list[Delivery]:
            return await self._with_attempts(await self._read(after_id, count, None))

        return await self._unless_stream_gone(read)

    async def claim_idle(self, min_idle_ms: int, count: int) -> list[Delivery]:
        return await self._unless_stream_gone(lambda: self._claim_idle(min_idle_ms, count))

    async def _unless_stream_gone(self, read: Callable[[], Awaitable[list[Delivery]]]) -> list[Delivery]:
        """Run a read; when the stream or group was deleted under us (an operator's DEL, a Redis restarted without
        persistence), start over on a new, empty one instead of ending the consumer loop."""
        try:
            return await read()
        except ResponseError as exc:
            if not any(sign in str(exc) for sign in _STREAM_GONE):
                raise
        self._claim_cursor = "0-0"
        await self.ensure_group()
        return []

    async def _claim_idle(self, min_idle_ms: int, count: int) -> list[Delivery]:
        with redis_unavailable_as_bus_error(self._address):
            # Redis >= 7 drops entries trimmed while pending from the PEL itself (third element).
            reply = await self._client.xautoclaim(
                self._key, self.group, self.consumer, min_idle_ms, start_id=self._claim_cursor, count=count
            )
        next_start, entries = reply[0], reply[1]
        self._claim_cursor = next_start.decode()
        if not entries:
            await self._forget_departed_consumers(2 * min_idle_ms)
        return await self._with_attempts(entries)

    async def _forget_departed_consumers(self, idle_ms: int) -> None:
        """Drop consumers with nothing pending and silent for `idle_ms`: with one name per process, dead names would
        pile up in `npc-host status`. A live one dropped by mistake is recreated by its next read."""
        with redis_unavailable_as_bus_error(self._address):
            consumers: list[dict[str, Any]] = await self._client.xinfo_consumers(self._key, self.group)
            for consumer in consumers:
                name = consumer["name"]
                if consumer["pending"] == 0 and consumer["idle"] > idle_ms and name != self.consumer.encode():
                    await self._client.xgroup_delconsumer(self._key, self.group, name)

    async def settle(self, handled_ids: Sequence[str], acked: Sequence[str], rejected: Sequence[Rejection]) -> None:
        ids = [*acked, *(rejection.delivery.entry_id for rejection in rejected)]
        if not ids:
            return
        with redis_unavailable_as_bus_error(self._address):
            # MULTI only when dead letters are written, so an entry is never both parked and left pending.
            async with self._client.pipeline(transaction=bool(rejected)) as pipe:
                self._deduper.queue_mark(pipe, self.group, handled_ids)
                for rejection in rejected:
                    fields = dead_letter_fields(rejection, self.stream, self.group, self.consumer)
                    pipe.xadd(self._dead_key, wire_fields(fields))
                pipe.xack(self._key, self.group, *ids)
                await pipe.execute()

    async def _read(self, start: str, count: int, block: int | None) -> list[RawEntry]:
        with redis_unavailable_as_bus_error(self._address):
            reply: Any = await self._client.xreadgroup(
                self.group, self.consumer, {self._key: start}, count=count, block=block
            )
        return list(reply[0][1]) if reply else []

    async def _with_attempts(self, entries: Sequence[RawEntry]) -> list[Delivery]:
        """XREADGROUP and XAUTOCLAIM do not say how often an entry was delivered; XPENDING does."""
        if not entries:
            return []
        with redis_unavailable_as_bus_error(self._address):
            async with self._client.pipeline(transaction=False) as pipe:
                for entry_id, _ in entries:
                    pipe.xpending_range(self._key, self.group, entry_id, entry_id, 1)
                replies: list[list[dict[str, Any]]] = await pipe.execute()
        attempts = [int(reply[0]["times_delivered"]) if reply else 1 for reply in replies]
        return [
            to_delivery(entry_id, fields, count) for (entry_id, fields), count in zip(entries, attempts, strict=True)
        ]
