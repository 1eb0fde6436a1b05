"""The admin web server inside `npc-host run`: uvicorn on this process's event loop, stopped with the roles.

Every process serves /healthz and /metrics on `admin_host:admin_port`; a process with the admin role also serves
the operator's page. The socket is bound before anything else starts, so a port in use is one clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from host.admin.app import create_app
from host.admin.context import AdminContext, HealthSource
from host.admin.feed import LiveFeed
from host.admin.sessions import SessionStore
from host.admin.trials import TrialDesk
from host.errors import ConfigError
from host.roles.services import HostServices

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 256  # open connections and live pages together; more get 503 until some close


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `npc-host run` owns SIGTERM and SIGINT: it stops every role, this server included.
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # a port in use or an address not on this machine: a setting to fix, not a crash
        sock.close()
        raise ConfigError(
            f"cannot serve the admin page on {host}:{port} ({exc.strerror or exc}); "
            "set NPC_HOST_ADMIN_PORT to a free port (0 picks one)"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class AdminServer:
    """Serves until `stop` is set. `page` adds the operator's page (the admin role)."""

    def __init__(self, services: HostServices, health: HealthSource, *, page: bool) -> None:
        settings = services.settings
        self.services = services
        servers = services.registry.server_names()
        self.feed = LiveFeed(services.bus, servers) if page else None
        self.trials = TrialDesk(services.bus, servers) if page else None
        sessions = SessionStore(services.store.admin_sessions, settings.admin_session_hours * 3600)
        context = AdminContext(services, health, sessions, trials=self.trials)
        self.app = create_app(context, self.feed, page=page)
        self.socket = bind(settings.admin_host, settings.admin_port)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}/"

    async def run(self, stop: asyncio.Event) -> None:
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws_max_size=64 * 1024,  # the page sends nothing over the live socket; a cap all the same
            limit_concurrency=MAX_CONNECTIONS,
        )
        server = _EmbeddedServer(config)
        what = "admin page" if self.feed is not None else "health and metrics"
        log.info("%s at %s", what, self.url)
        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(server.serve(sockets=[self.socket]), name="admin-http")
            if self.feed is not None:
                tasks.create_task(self.feed.run(stop), name="admin-feed")
            if self.trials is not None:
                tasks.create_task(self.trials.run(stop), name="admin-trials")
            await stop.wait()
            if self.feed is not None:
                self.feed.close()
            server.should_exit = True
            await serving
        self.socket.close()
