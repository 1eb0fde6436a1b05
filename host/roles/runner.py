"""`npc-host run`: the chosen roles in one process, on the configured hub, until SIGTERM or SIGINT.

Start-up logs its progress (profiles, hub, models) and one "ready" line listing what listens where
(`host/roles/startup.py`). A stop signal is honoured at any point, during start-up and warm-up included: every
consumer loop ends after its current handler, an in-flight turn gets `drain_timeout_s` to finish, then what is
still running is cancelled; entries not handled stay pending for the other processes. Exit code 0 after a stop.
Each role's module (and so its model runtime) is imported only when that role runs in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from host import metrics
from host.brain.engine import NpcBrain
from host.bus.streams import StreamKind, stream_name
from host.config import Settings
from host.errors import ConfigError
from host.llm.factory import close_all, make_llm
from host.roles.health import RoleHealth
from host.roles.services import HostServices
from host.store.memory import DbMemoryStore

if TYPE_CHECKING:
    from host.admin.server import AdminServer

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
    )


def _brain_role(services: HostServices) -> Role:
    from host.roles.brain import BrainRole

    services.progress.expect(*(f"warm-up of '{server}'" for server in services.registry.server_names()))
    return BrainRole(services, make_brain(services))


def _gateway_role(services: HostServices) -> Role:
    from host.roles.gateway import GatewayRole

    services.progress.expect("bridge")
    return GatewayRole(services)


def _speech_role(services: HostServices) -> Role:
    from host.roles.speech import SpeechRole  # faster-whisper and Piper: the `voice` extra

    services.progress.expect("speech models")
    return SpeechRole(services)


def _advisor_role(services: HostServices) -> Role:
    from host.advisor.role import AdvisorRole

    return AdvisorRole(services)


class AdminRole:
    """The operator's page and API on this process's web server (host/admin)."""

    name = "admin"

    def __init__(self, server: AdminServer) -> None:
        self.server = server

    async def run(self, stop: asyncio.Event) -> None:
        await self.server.run(stop)


_ROLE_FACTORIES: dict[str, Callable[[HostServices], Role]] = {
    "brain": _brain_role,
    "gateway": _gateway_role,
    "speech": _speech_role,
    "advisor": _advisor_role,
}


def build_roles(services: HostServices, names: Sequence[str], server: AdminServer) -> list[Role]:
    return [AdminRole(server) if name == "admin" else _ROLE_FACTORIES[name](services) for name in names]


T = TypeVar("T")


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None (and `work` cancelled) when `stop` is set first."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        opened = await task
        if isinstance(opened, HostServices):  # it finished while being cancelled: still ours to close
            await opened.aclose()
    return None


async def run_roles(
    settings: Settings,
    names: Sequence[str],
    *,
    drain_timeout_s: float = 1.0,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Run `names` until SIGTERM or SIGINT; `on_stop` is called as the signal arrives (the CLI's exit deadline).

    The handlers are plain signal handlers, not the event loop's: they run at the main thread's next bytecode even
    while the loop is busy (a module importing, a model being set up), so the deadline starts with the signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_requested(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", sig.name)
            stop.set()

    signalled: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if on_stop is not None and not signalled:  # the deadline runs from the first signal; a second never moves it
            on_stop()
        signalled.append(signum)
        loop.call_soon_threadsafe(stop_requested, signal.Signals(signum))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        services = await _unless_stopped(HostServices.open(settings), stop)
        if services is None:
            return
        try:
            await _run_opened(services, names, stop, drain_timeout_s)
        finally:
            await services.aclose()
            await close_all()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _run_opened(
    services: HostServices, names: Sequence[str], stop: asyncio.Event, drain_timeout_s: float
) -> None:
    from host.admin.server import AdminServer  # FastAPI and uvicorn: only where the host runs, not in `chat`

    health = RoleHealth()
    # Every process serves /healthz and /metrics; the admin role adds the operator's page to the same server.
    server = AdminServer(services, health.snapshot, page="admin" in names)
    roles = build_roles(services, names, server)  # each says what the ready line waits for
    services.progress.listening("admin page" if "admin" in names else "health and metrics", server.url)
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
        log.warning("%s did not drain within %.1fs; cancelling it", late.get_name(), drain_timeout_s)
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
