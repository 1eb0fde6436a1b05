"""`npc-host run`: the chosen roles in one process, on the configured hub, until SIGTERM or SIGINT.

Shutdown drains: the stop signal ends every consumer loop after its current handler (an in-flight turn finishes),
entries not handled stay pending for the other processes, and what is still running after `drain_timeout_s` is
cancelled. Exit code 0 after a clean drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Protocol

from host import metrics
from host.admin.server import AdminServer
from host.advisor.role import AdvisorRole
from host.brain.engine import NpcBrain
from host.bus.streams import StreamKind, stream_name
from host.config import Settings
from host.errors import ConfigError
from host.llm.factory import close_all, make_llm
from host.roles.brain import BrainRole
from host.roles.gateway import GatewayRole
from host.roles.health import RoleHealth
from host.roles.services import HostServices
from host.roles.speech import SpeechRole
from host.store.memory import DbMemoryStore

log = logging.getLogger(__name__)

ALL_ROLES = ("brain", "gateway", "speech", "advisor", "admin")


class Role(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


def parse_roles(text: str | None) -> tuple[str, ...]:
    if not text:
        return ALL_ROLES
    roles = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [role for role in roles if role not in ALL_ROLES]
    if unknown:
        raise ConfigError(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(ALL_ROLES)}", code="roles")
    return roles


def make_brain(services: HostServices) -> NpcBrain:
    settings = services.settings
    return NpcBrain(
        services.registry,
        services.store,
        DbMemoryStore(services.store.db),
        services.transcripts,
        lambda npc: make_llm(settings, npc.llm),  # shared per backend: the embedded model loads once
        context_tokens=settings.llm.context_tokens,
        first_clause_min_chars=settings.llm.first_clause_min_chars,
    )


class AdminRole:
    """The operator's page and API on this process's web server (host/admin)."""

    name = "admin"

    def __init__(self, server: AdminServer) -> None:
        self.server = server

    async def run(self, stop: asyncio.Event) -> None:
        await self.server.run(stop)


def build_roles(services: HostServices, names: Sequence[str], server: AdminServer) -> list[Role]:
    factories: dict[str, Callable[[], Role]] = {
        "brain": lambda: BrainRole(services, make_brain(services)),
        "gateway": lambda: GatewayRole(services),
        "speech": lambda: SpeechRole(services),
        "advisor": lambda: AdvisorRole(services),
        "admin": lambda: AdminRole(server),
    }
    return [factories[name]() for name in names]


async def run_roles(settings: Settings, names: Sequence[str], *, drain_timeout_s: float = 20.0) -> None:
    services = await HostServices.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        health = RoleHealth()
        # Every process serves /healthz and /metrics; the admin role adds the operator's page to the same server.
        server = AdminServer(services, health.snapshot, page="admin" in names)
        roles = build_roles(services, names, server)
        streams = [stream_name(name, kind) for name in services.registry.server_names() for kind in StreamKind]
        watchers = [asyncio.create_task(metrics.watch_queues(services.bus, streams, stop), name="queues")]
        if "admin" not in names:
            watchers.append(asyncio.create_task(server.run(stop), name="health-and-metrics"))
        log.info("running roles %s for servers %s", ", ".join(names), ", ".join(services.registry.server_names()))
        tasks = [asyncio.create_task(role.run(stop), name=f"role:{role.name}") for role in roles]
        for role, task in zip(roles, tasks, strict=True):
            health.watch(role.name, task)
        stopped = asyncio.create_task(stop.wait(), name="stop-signal")
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await stopped
        _, pending = await asyncio.wait(tasks, timeout=drain_timeout_s)
        for late in pending:
            log.warning("%s did not drain within %.0fs; cancelling it", late.get_name(), drain_timeout_s)
            late.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
        for outcome in await asyncio.gather(*watchers, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("%s stopped: %s", "a metrics or health task", outcome)
        # The role that failed first is the cause; one that failed while draining is still reported, never lost.
        by_finish = sorted(tasks, key=lambda task: task not in done)
        errors = [error for task in by_finish if not task.cancelled() and (error := task.exception()) is not None]
        for later in errors[1:]:
            log.error("another role failed as well: %s", later)
        if errors:
            raise errors[0]
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await services.aclose()
        await close_all()
