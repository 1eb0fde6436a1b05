"""The in-process hub: Redis Streams semantics (consumer groups, pending entries, claims) on asyncio.

Each stream is a log; every group has a cursor and a pending list, so each group gets every event and the consumers
of a group share them. A stream keeps up to `memory_queue_size` entries, so a group created later still sees them
(as with Redis). When full, the head every group has acked is dropped; if some group still needs it, `publish`
waits (backpressure). A stream without any group drops its oldest entry, since nobody can be waiting for it.

Entries carrying audio (utterances, NPC voices: ~100 KB each) are kept after every group acked them only up to
`memory_audio_bytes` per stream: 10,000 of them would be a gigabyte, a host talking for hours grew by 20 MB a minute.
Audio nobody has handled yet is never dropped for its size (the entry count still applies backpressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from host.bus.base import Bus
from host.bus.dead_letters import dead_letter_fields, parse_dead_letter
from host.bus.dedupe import Deduper, MemoryDeduper
from host.bus.delivery import Delivery, GroupReader, Rejection
from host.bus.reports import ConsumerInfo, DeadLetter, GroupInfo, PendingEntry, StreamInfo
from host.bus.streams import dead_letter_stream
from host.config import BusSettings

if TYPE_CHECKING:
    from host.events import Event


@dataclass(slots=True)
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float


@dataclass(slots=True)
class _Group:
    cursor: int  # index of the next entry to deliver
    last_delivered_id: str = "0-0"
    pending: dict[int, _Pending] = field(default_factory=dict)
    consumers: dict[str, float] = field(default_factory=dict)  # name -> last seen (monotonic)


def _payload_bytes(event: Event) -> int:
    return sum(len(getattr(event, name)) for name in event.BINARY_FIELDS)


class _Stream:
    def __init__(self, capacity: int, audio_bytes: int) -> None:
        self.capacity = capacity
        self.audio_budget = audio_bytes
        self.audio_bytes = 0  # binary payload held by the kept entries
        self.entries: dict[int, tuple[str, Event]] = {}
        self.index_of: dict[str, int] = {}
        self.first = 0
        self.next = 0
        self.groups: dict[str, _Group] = {}
        self.dead: list[DeadLetter] = []
        self.changed = asyncio.Condition()
        self._last_id = (0, 0)

    def append(self, event: Event) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last_id
        self._last_id = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        entry_id = f"{self._last_id[0]}-{self._last_id[1]}"
        self.entries[self.next] = (entry_id, event)
        self.index_of[entry_id] = self.next
        self.audio_bytes += _payload_bytes(event)
        self.next += 1
        return entry_id

    def has_room(self) -> bool:
        """Whether one more entry fits, after dropping the head every group has acked (all of it when the stream is
        full; as much as takes its audio under budget otherwise)."""
        full = self.next - self.first >= self.capacity
        if not full and self.audio_bytes <= self.audio_budget:
            return True
        if self.groups:
            keep_from = min(min(group.pending, default=group.cursor) for group in self.groups.values())
        elif full:
            keep_from = self.next - self.capacity + 1  # nobody can be waiting for entries of a stream without groups
        else:
            keep_from = self.next  # the same: its audio over budget, as much of it as that takes
        while self.first < keep_from and (full or self.audio_bytes > self.audio_budget):
            entry_id, event = self.entries.pop(self.first)
            del self.index_of[entry_id]
            self.audio_bytes -= _payload_bytes(event)
            self.first += 1
        return self.next - self.first < self.capacity

    def group(self, name: str) -> _Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(cursor=self.first)
        return group


class MemoryBus(Bus):
    def __init__(self, settings: BusSettings | None = None) -> None:
        settings = settings or BusSettings()
        super().__init__(settings, MemoryDeduper(settings.dedupe_memory_size))
        self._streams: dict[str, _Stream] = {}
        self._health: dict[str, tuple[float, str]] = {}  # process -> (expires at, report)

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream(self.settings.memory_queue_size, self.settings.memory_audio_bytes)
        return stream

    async def publish(self, stream: str, event: Event) -> str:
        target = self._stream(stream)
        async with target.changed:
            await target.changed.wait_for(target.has_room)
            entry_id = target.append(event)
            target.changed.notify_all()
        return entry_id

    async def publish_many(self, stream: str, events: Sequence[Event]) -> list[str]:
        return [await self.publish(stream, event) for event in events]

    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        target = self._stream(stream)
        async with target.changed:
            acked = _ack(target, target.group(group), entry_ids)
            target.changed.notify_all()
        return acked

    async def pending(self, stream: str, group: str, *, count: int = 100) -> list[PendingEntry]:
        target = self._stream(stream)
        now = time.monotonic()
        entries = sorted(target.group(group).pending.items())[:count]
        return [
            PendingEntry(
                entry_id=target.entries[index][0],
                consumer=state.consumer,
                idle_ms=int((now - state.delivered_at) * 1000),
                deliveries=state.deliveries,
            )
            for index, state in entries
        ]

    async def streams(self) -> list[str]:
        # As Redis holds them: a stream exists once something was published to it or a group created on it.
        return sorted(name for name, target in self._streams.items() if target.next or target.groups)

    async def stream_info(self, stream: str) -> StreamInfo:
        target = self._stream(stream)
        now = time.monotonic()
        groups = []
        for name, group in target.groups.items():
            consumers = [
                ConsumerInfo(
                    name=consumer,
                    pending=sum(1 for state in group.pending.values() if state.consumer == consumer),
                    idle_ms=int((now - last_seen) * 1000),
                )
                for consumer, last_seen in group.consumers.items()
            ]
            groups.append(
                GroupInfo(
                    name=name,
                    consumers=consumers,
                    pending=len(group.pending),
                    lag=target.next - group.cursor,
                    last_delivered_id=group.last_delivered_id,
                )
            )
        return StreamInfo(stream=stream, length=len(target.entries), groups=groups, dead_letters=len(target.dead))

    async def dead_letters(self, stream: str, *, count: int = 100) -> list[DeadLetter]:
        return self._stream(stream).dead[:count]

    async def put_health(self, process: str, report: str, ttl_s: float) -> None:
        self._health[process] = (time.monotonic() + ttl_s, report)

    async def health_reports(self) -> list[str]:
        now = time.monotonic()
        self._health = {process: kept for process, kept in self._health.items() if kept[0] > now}
        return [report for _, report in self._health.values()]

    async def _close(self) -> None:
        """Nothing to release: consumer loops see their stop event within `block_ms`."""

    def _group_reader(self, stream: str, group: str, consumer: str) -> GroupReader:
        return _MemoryGroupReader(self._stream(stream), self.deduper, stream, group, consumer)


def _ack(stream: _Stream, group: _Group, entry_ids: Sequence[str]) -> int:
    acked = 0
    for entry_id in entry_ids:
        index = stream.index_of.get(entry_id)
        if index is not None and group.pending.pop(index, None) is not None:
            acked += 1
    return acked


class _MemoryGroupReader(GroupReader):
    def __init__(self, stream: _Stream, deduper: Deduper, stream_name: str, group: str, consumer: str) -> None:
        self._log = stream
        self._deduper = deduper
        self.stream = stream_name
        self.group = group
        self.consumer = consumer

    def _state(self) -> _Group:
        group = self._log.group(self.group)
        group.consumers[self.consumer] = time.monotonic()
        return group

    async def ensure_group(self) -> None:
        self._state()

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        log, group = self._log, self._state()
        async with log.changed:
            if group.cursor >= log.next and block_ms > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_ms / 1000):
                        await log.changed.wait_for(lambda: group.cursor < log.next)
            now = time.monotonic()
            end = min(group.cursor + count, log.next)
            deliveries = []
            for index in range(group.cursor, end):
                group.pending[index] = _Pending(self.consumer, 1, now)
                deliveries.append(self._delivery(index, 1))
            group.cursor = end
        if deliveries:
            group.last_delivered_id = deliveries[-1].entry_id
        return deliveries

    async def read_own_pending(self, after_id: str, count: int) -> list[Delivery]:
        group = self._state()
        after = self._log.index_of.get(after_id, -1)
        mine = sorted(i for i, state in group.pending.items() if state.consumer == self.consumer and i > after)
        return [self._redeliver(group, index) for index in mine[:count]]

    async def claim_idle(self, min_idle_ms: int, count: int) -> list[Delivery]:
        group = self._state()
        oldest_delivery = time.monotonic() - min_idle_ms / 1000
        idle = sorted(i for i, state in group.pending.items() if state.delivered_at <= oldest_delivery)
        return [self._redeliver(group, index) for index in idle[:count]]

    async def settle(self, handled_ids: Sequence[str], acked: Sequence[str], rejected: Sequence[Rejection]) -> None:
        await self._deduper.mark(self.group, handled_ids)
        log = self._log
        for rejection in rejected:
            log.dead.append(self._dead_letter(rejection))
        async with log.changed:
            _ack(log, self._state(), [*acked, *(r.delivery.entry_id for r in rejected)])
            log.changed.notify_all()

    def _redeliver(self, group: _Group, index: int) -> Delivery:
        state = group.pending[index]
        state.consumer, state.deliveries, state.delivered_at = self.consumer, state.deliveries + 1, time.monotonic()
        return self._delivery(index, state.deliveries)

    def _delivery(self, index: int, attempts: int) -> Delivery:
        entry_id, event = self._log.entries[index]
        return Delivery(entry_id=entry_id, attempts=attempts, event=event)

    def _dead_letter(self, rejection: Rejection) -> DeadLetter:
        fields = dead_letter_fields(rejection, self.stream, self.group, self.consumer)
        return parse_dead_letter(f"{len(self._log.dead)}-0", dead_letter_stream(self.stream), fields)
