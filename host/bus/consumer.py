"""The consumer loop shared by every bus: recover, claim, read, dedupe, handle, ack or dead-letter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from host.bus.dedupe import Deduper
from host.bus.delivery import Delivery, GroupReader, Handler, Rejection
from host.bus.errors import BusUnavailableError
from host.config import BusSettings
from host.errors import NotReadyError

if TYPE_CHECKING:
    from host.events import Event

logger = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 2.0
_REMEMBERED_ERRORS = 1000


class ConsumerLoop:
    def __init__(
        self,
        reader: GroupReader,
        deduper: Deduper,
        handler: Handler,
        settings: BusSettings,
        *,
        batch: int,
        block_ms: int,
    ) -> None:
        self._reader = reader
        self._deduper = deduper
        self._handler = handler
        self._settings = settings
        self._batch = batch
        self._block_ms = block_ms
        # Own pending entries are read first: at start, after a reconnect, and retry_delay after a handler failure.
        self._recover_due: float | None = 0.0
        self._recover_cursor: str | None = None  # set while a recovery pass walks the pending list
        self._next_claim_at = 0.0
        self._last_errors: dict[str, str] = {}  # entry id -> last handler error, for the dead-letter reason

    @property
    def _where(self) -> str:
        return f"{self._reader.stream}/{self._reader.group}/{self._reader.consumer}"

    async def run(self, stop: asyncio.Event) -> None:
        backoff = _BACKOFF_FIRST_S
        group_ready = False
        while not stop.is_set():
            try:
                if not group_ready:
                    await self._reader.ensure_group()
                    group_ready = True
                await self._process(await self._next_deliveries(), stop)
                backoff = _BACKOFF_FIRST_S
            except BusUnavailableError as exc:
                if stop.is_set():
                    return
                logger.warning("%s: %s; retrying in %.2fs", self._where, exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                self._schedule_recovery(0.0)  # a read whose reply was lost left entries pending for us

    def _schedule_recovery(self, delay_s: float) -> None:
        due = time.monotonic() + delay_s
        if self._recover_due is None or due < self._recover_due:
            self._recover_due = due

    async def _next_deliveries(self) -> list[Delivery]:
        now = time.monotonic()
        if self._recover_cursor is None and self._recover_due is not None and now >= self._recover_due:
            self._recover_cursor, self._recover_due = "0", None
        if self._recover_cursor is not None:
            deliveries = await self._reader.read_own_pending(self._recover_cursor, self._batch)
            self._recover_cursor = deliveries[-1].entry_id if len(deliveries) == self._batch else None
            if deliveries:
                return deliveries
        if now >= self._next_claim_at:
            deliveries = await self._reader.claim_idle(self._settings.claim_idle_ms, self._batch)
            more_waiting = len(deliveries) == self._batch
            self._next_claim_at = now if more_waiting else now + self._settings.claim_idle_ms / 2000
            if deliveries:
                return deliveries
        return await self._reader.read_new(self._batch, self._block_ms)

    async def _process(self, deliveries: Sequence[Delivery], stop: asyncio.Event) -> None:
        if not deliveries:
            return
        rejected: list[Rejection] = []
        runnable: list[tuple[Delivery, Event]] = []
        for delivery in deliveries:
            if delivery.event is None:
                rejected.append(_invalid(delivery))
            elif delivery.attempts > self._settings.max_deliveries:
                rejected.append(self._poison(delivery))
            else:
                runnable.append((delivery, delivery.event))
        seen = await self._deduper.seen(self._reader.group, [event.id for _, event in runnable])
        acked: list[str] = []
        handled_ids: list[str] = []
        try:
            for delivery, event in runnable:
                if event.id in seen:
                    acked.append(delivery.entry_id)  # a redelivery of an event this group already handled
                    continue
                if stop.is_set():
                    break  # the rest stay pending for whoever consumes next
                if await self._handle(delivery, event):
                    seen.add(event.id)
                    handled_ids.append(event.id)
                    acked.append(delivery.entry_id)
        except BaseException:
            # Cancelled mid-batch: still remember and ack what was handled, so it is not handled twice.
            with contextlib.suppress(BusUnavailableError):
                await self._settle(handled_ids, acked, rejected)
            raise
        await self._settle(handled_ids, acked, rejected)

    async def _handle(self, delivery: Delivery, event: Event) -> bool:
        try:
            await self._handler(event)
        except Exception as exc:
            if isinstance(exc, NotReadyError):  # expected (a cut before its turn is recorded, say): no traceback
                logger.info("%s: %s %s waits: %s", self._where, event.type, event.id, exc.message)
            else:
                logger.warning(
                    "%s: handler failed on %s %s (entry %s, delivery %d); it stays pending for a retry",
                    self._where,
                    event.type,
                    event.id,
                    delivery.entry_id,
                    delivery.attempts,
                    exc_info=True,
                )
            if len(self._last_errors) >= _REMEMBERED_ERRORS:
                self._last_errors.pop(next(iter(self._last_errors)))
            self._last_errors[delivery.entry_id] = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._schedule_recovery(self._settings.retry_delay_ms / 1000)
            return False
        self._last_errors.pop(delivery.entry_id, None)
        return True

    def _poison(self, delivery: Delivery) -> Rejection:
        reason = f"delivered {delivery.attempts} times, more than max_deliveries={self._settings.max_deliveries}"
        last_error = self._last_errors.pop(delivery.entry_id, None)
        if last_error is not None:
            reason += f"; last error: {last_error}"
        return Rejection(delivery, "max_deliveries", reason)

    async def _settle(self, handled_ids: list[str], acked: list[str], rejected: list[Rejection]) -> None:
        for rejection in rejected:
            logger.warning(
                "%s: dead-lettering entry %s: %s", self._where, rejection.delivery.entry_id, rejection.reason
            )
        try:
            await self._reader.settle(handled_ids, acked, rejected)
        except BusUnavailableError:
            # Unacked entries stay pending and come back; the dedupe marks (if written) keep them from running twice.
            self._schedule_recovery(0.0)
            raise


def _invalid(delivery: Delivery) -> Rejection:
    if delivery.error is None:
        return Rejection(delivery, "event_missing", "the entry was deleted while pending")
    return Rejection(delivery, delivery.error.code, delivery.error.message)
