"""What the bus reports about itself: pending entries, stream and group state, dead letters (for `npc-host status`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
