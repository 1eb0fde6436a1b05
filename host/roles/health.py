"""Each role's health in this process: what `/healthz` answers (host/admin/health_routes.py, through `snapshot`) and
what `npc-host status` shows (through the report each process keeps on the hub).

The runner marks a role running when it starts, failed (with the error) when its task ends in an exception or ends
on its own before the stop signal, and stopped after a clean drain. A process is healthy while every role it runs is
running: a failed role takes the process down (runner.py), so "failed" is only ever seen on the way out, by the last
report the hub keeps for a while and by a /healthz probe that races the exit.

A process may also be degraded: up and serving what it has, but refusing new work for a reason it names (above its
memory ceiling, host/memory_guard.py). Degraded is not down: /healthz answers 200 with status "degraded", and
`npc-host status` lists the condition without failing.
"""

from __future__ import annotations

import os
import socket
import time
from enum import StrEnum

from pydantic import BaseModel


class RoleState(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


class RoleHealth(BaseModel):
    role: str
    state: RoleState
    since: float
    error: str | None = None


class Degradation(BaseModel):
    """A condition under which the process refuses new work but keeps serving what it has."""

    condition: str
    since: float
    reason: str


class ProcessHealth(BaseModel):
    process: str
    reported_at: float
    roles: list[RoleHealth]
    degraded: list[Degradation] = []

    @property
    def healthy(self) -> bool:
        return bool(self.roles) and all(role.state is RoleState.RUNNING for role in self.roles)

    def role_states(self) -> dict[str, str]:
        """Role -> "running", "stopped" or "failed: <error>", as /healthz shows them."""
        return {
            role.role: f"failed: {role.error}" if role.state is RoleState.FAILED else role.state.value
            for role in self.roles
        }


# Longest error text kept: enough to name the cause, short enough for a status table.
_ERROR_CHARS = 300


def describe(exc: BaseException) -> str:
    """One line naming an error; for a task group's, the errors inside it."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)[:_ERROR_CHARS]
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:_ERROR_CHARS]


class HealthBoard:
    """The roles of one process and their state (written by the runner) and its degraded conditions (written by the
    memory guard); read by /healthz and the hub reporter through `report`."""

    def __init__(self, process: str | None = None) -> None:
        self.process = process or f"{socket.gethostname()}-{os.getpid()}"
        self._roles: dict[str, RoleHealth] = {}
        self._degraded: dict[str, Degradation] = {}

    def set(self, role: str, state: RoleState, error: str | None = None) -> None:
        self._roles[role] = RoleHealth(role=role, state=state, since=time.time(), error=error)

    def degrade(self, condition: str, reason: str) -> None:
        """The process refuses new work for `reason` (the reason is updated; `since` is kept while it lasts)."""
        current = self._degraded.get(condition)
        since = current.since if current is not None else time.time()
        self._degraded[condition] = Degradation(condition=condition, since=since, reason=reason)

    def recover(self, condition: str) -> None:
        self._degraded.pop(condition, None)

    def clear(self) -> None:
        self._roles.clear()
        self._degraded.clear()

    def report(self) -> ProcessHealth:
        return ProcessHealth(
            process=self.process,
            reported_at=time.time(),
            roles=list(self._roles.values()),
            degraded=list(self._degraded.values()),
        )


BOARD = HealthBoard()  # this process's roles
