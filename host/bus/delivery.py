"""What a consumer loop works with: deliveries, rejections, and the backend primitives behind one consumer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the hub's modules import without building the event models
    from host.errors import EventValidationError
    from host.events import Event

Handler = Callable[["Event"], Awaitable[None]]


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
