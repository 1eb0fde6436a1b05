"""`npc-host run`: the chosen roles in one process, on the configured hub, until SIGTERM or SIGINT.

Start-up logs its progress (profiles, hub, models) and one "ready" line listing what listens where
(`host/roles/startup.py`). A stop signal is honoured at any point, during start-up and warm-up included: every
consumer loop ends after its current handler, an in-flight turn gets `drain_timeout_s` to finish, then what is
still running is cancelled; entries not handled stay pending for the other processes. Exit code 0 after a stop.
Each role's module (and so its model runtime) is imported only when that role runs in this process.

A role is never left half alive: when its task fails, or ends on its own before the stop signal, the error is logged
with its traceback, the role shows as failed in `/healthz` and `npc-host status`, the other roles drain, and the
process exits with code 1 so its supervisor (systemd, docker) starts it again.
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
from host.bus import Bus, BusError
from host.bus.streams import StreamKind, stream_name
from host.config import Settings
from host.errors import ConfigError, NpcHostError
from host.llm.factory import close_all, make_llm
from host.roles.health import BOARD, HealthBoard, RoleState, describe
from host.roles.services import HostServices
from host.store.memory import DbMemoryStore

if TYPE_CHECKING:
    from host.admin.server import AdminServer

log = logging.getLogger(__name__)

ALL_ROLES = ("brain", "gateway", "speech", "advisor", "admin")
HEALTH_INTERVAL_S = 5.0  # how often the process's health goes to the hub; it is kept there 3 intervals
LAST_REPORT_TTL_S = 60.0  # the report a process leaves when it stops: `npc-host status` shows why for a minute


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
        first_clause_min_chars=settings.llm.first_clause_min_chars or None,  # 0: whole sentences
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


class RoleFailedError(NpcHostError):
    """A role's task failed or ended before the stop signal; the process goes down."""

    code = "role_failed"


async def supervise(role: Role, stop: asyncio.Event, board: HealthBoard = BOARD) -> None:
    """Run one role, keeping its health on `board`; a failure is logged in full here, where it happened."""
    board.set(role.name, RoleState.RUNNING)
    try:
        await role.run(stop)
    except asyncio.CancelledError:
        board.set(role.name, RoleState.STOPPED, "cancelled: it did not drain in time")
        raise
    except Exception as exc:
        board.set(role.name, RoleState.FAILED, describe(exc))
        log.critical("role %s failed; the process stops: %s", role.name, describe(exc), exc_info=exc)
        raise RoleFailedError(f"role {role.name} failed: {describe(exc)}") from exc
    if not stop.is_set():
        board.set(role.name, RoleState.FAILED, "ended before the stop signal")
        log.critical("role %s ended on its own; the process stops", role.name)
        raise RoleFailedError(f"role {role.name} ended before the stop signal")
    board.set(role.name, RoleState.STOPPED)


async def send_health(bus: Bus, board: HealthBoard, ttl_s: float = 3 * HEALTH_INTERVAL_S) -> None:
    """This process's health on the hub for `npc-host status`; a hub briefly away skips a report."""
    try:
        await bus.put_health(board.process, board.report().model_dump_json(), ttl_s=ttl_s)
    except BusError as exc:
        log.warning("health report not sent to the hub: %s", exc)


async def report_health(
    bus: Bus, board: HealthBoard, stop: asyncio.Event, interval_s: float = HEALTH_INTERVAL_S
) -> None:
    while not stop.is_set():
        await send_health(bus, board, 3 * interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


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

    BOARD.clear()
    # Every process serves /healthz and /metrics; the admin role adds the operator's page to the same server.
    server = AdminServer(services, BOARD.report, page="admin" in names)
    roles = build_roles(services, names, server)  # each says what the ready line waits for
    services.progress.listening("admin page" if "admin" in names else "health and metrics", server.url)
    streams = [stream_name(name, kind) for name in services.registry.server_names() for kind in StreamKind]
    watchers = [
        asyncio.create_task(metrics.watch_queues(services.bus, streams, stop), name="queues"),
        asyncio.create_task(services.memory.watch(stop), name="memory"),
    ]
    if "admin" not in names:
        watchers.append(asyncio.create_task(server.run(stop), name="health-and-metrics"))
    log.info("running roles %s for servers %s", ", ".join(names), ", ".join(services.registry.server_names()))
    tasks = [asyncio.create_task(supervise(role, stop), name=f"role:{role.name}") for role in roles]
    watchers.append(asyncio.create_task(report_health(services.bus, BOARD, stop), name="health"))
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
    await send_health(services.bus, BOARD, LAST_REPORT_TTL_S)  # the last word: stopped, or which role failed
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
