"""What the admin app works with: the process's shared services, its sessions, and where role health comes from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from host.admin.sessions import SessionStore, SignInLimiter
from host.admin.trials import TrialDesk
from host.log_window import LogWindow
from host.roles.health import ProcessHealth
from host.roles.services import HostServices

# Each role's state in this process and what it refuses while degraded, for /healthz.
HealthSource = Callable[[], ProcessHealth]


@dataclass
class AdminContext:
    services: HostServices
    health: HealthSource
    sessions: SessionStore
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
    trials: TrialDesk | None = None  # the admin role's: lines tried against draft profiles
    refusals: LogWindow = field(default_factory=LogWindow)  # refused requests logged once per window (refusals.py)

    @classmethod
    def of(cls, connection: HTTPConnection) -> AdminContext:
        context: AdminContext = connection.app.state.admin
        return context
