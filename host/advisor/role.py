"""The `advisor` role of `npc-host run`: APScheduler (asyncio) runs a pass per server every `every_minutes`, or
sooner once `after_lines` new transcript lines were written, whichever comes first; after a pass the interval starts
over. Passes of one server never overlap (the shared pass lock); a pass that another process is running is skipped.

It runs beside the brain without slowing it: NPC turns read stored advice and never wait for a pass.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from host.advisor.passes import AdvisorPasses
from host.advisor.reading import counts_for_advice, read_new_lines
from host.advisor.shared_state import PassBusyError, make_shared_state
from host.profiles.schema import AdvisorSpec
from host.roles.services import HostServices

log = logging.getLogger(__name__)

LINE_CHECK_INTERVAL_S = 10.0


class AdvisorRole:
    name = "advisor"

    def __init__(self, services: HostServices, *, line_check_interval_s: float = LINE_CHECK_INTERVAL_S) -> None:
        self.services = services
        self._line_check_interval_s = line_check_interval_s
        self._running: set[asyncio.Task[None]] = set()
        self._scheduler: AsyncIOScheduler | None = None
        self._passes: AdvisorPasses | None = None

    def servers(self) -> dict[str, AdvisorSpec]:
        registry = self.services.registry
        return {
            name: spec
            for name in registry.server_names()
            if (spec := registry.server(name).advisor) is not None and spec.enabled
        }

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.services.settings
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        state = make_shared_state(redis_url, settings.bus.key_prefix)
        self._passes = AdvisorPasses(self.services, state)
        scheduler = self._scheduler = AsyncIOScheduler(timezone="UTC")
        try:
            for server, spec in self.servers().items():
                first = datetime.now().astimezone() + timedelta(minutes=spec.every_minutes)
                scheduler.add_job(
                    self._start_pass,
                    "interval",
                    minutes=spec.every_minutes,
                    args=[server, "schedule"],
                    id=_interval_job(server),
                    next_run_time=first,
                    max_instances=1,
                    coalesce=True,
                )
                scheduler.add_job(
                    self._check_lines,
                    "interval",
                    seconds=self._line_check_interval_s,
                    args=[server, spec],
                    id=f"lines:{server}",
                    max_instances=1,
                    coalesce=True,
                )
            log.info("advisor scheduled for %s", ", ".join(self.servers()) or "no server (no [advisor] table)")
            scheduler.start()
            await stop.wait()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            for task in list(self._running):
                task.cancel()  # a cancelled pass is recorded as failed and leaves the cursor
            await asyncio.gather(*self._running, return_exceptions=True)
            await self._passes.aclose()
            await state.aclose()

    async def _check_lines(self, server: str, spec: AdvisorSpec) -> None:
        """Start a pass early once enough new lines are waiting (the advisor's own lines do not count)."""
        if any(task.get_name() == _pass_task(server) for task in self._running):
            return
        cursor = await self.services.store.advisor.cursor(server)
        new = await read_new_lines(self.services.settings.transcripts_dir, server, cursor, spec.max_bytes_per_pass)
        if sum(1 for line in new.lines if counts_for_advice(line)) >= spec.after_lines:
            await self._start_pass(server, "lines")

    async def _start_pass(self, server: str, trigger: str) -> None:
        if any(task.get_name() == _pass_task(server) for task in self._running):
            return
        task = asyncio.create_task(self._pass(server, trigger), name=_pass_task(server))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _pass(self, server: str, trigger: str) -> None:
        assert self._passes is not None and self._scheduler is not None
        spec = self.servers().get(server)
        if spec is None:
            return
        try:
            await self._passes.run(server, trigger)
        except PassBusyError as exc:
            log.info("advisor pass of '%s' skipped: %s", server, exc)
        except Exception:
            log.exception("advisor pass of '%s' could not run", server)
        finally:
            if trigger != "schedule" and self._scheduler.running:
                # Whichever came first: the interval starts over after a pass the line count started.
                self._scheduler.reschedule_job(_interval_job(server), trigger="interval", minutes=spec.every_minutes)


def _interval_job(server: str) -> str:
    return f"pass:{server}"


def _pass_task(server: str) -> str:
    return f"advisor-pass:{server}"
