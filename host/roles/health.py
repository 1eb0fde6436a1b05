"""Each role's health in this process: what `/healthz` answers (host/admin/health_routes.py, through `snapshot`) and
what `npc-host status` shows (through the report each process keeps on the hub).

The runner marks a role running when it starts, failed (with the error) when its task ends in an exception or ends
on its own before the stop signal, and stopped after a clean drain. A process is healthy while every role it runs is
running: a failed role takes the process down (runner.py), so "failed" is only ever seen on the way out, by the last
report the hub keeps for a while and by a /healthz probe that races the exit.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
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


class ProcessHealth(BaseModel):
    process: str
    reported_at: float
    roles: list[RoleHealth]

    @property
    def healthy(self) -> bool:
        return bool(self.roles) and all(role.state is RoleState.RUNNING for role in self.roles)


# Longest error text kept: enough to name the cause, short enough for a status table.
_ERROR_CHARS = 300


def describe(exc: BaseException) -> str:
    """One line naming an error; for a task group's, the errors inside it."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)[:_ERROR_CHARS]
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:_ERROR_CHARS]


class HealthBoard:
    """The roles of one process and their state; written by the runner, read by /healthz and the hub reporter."""

    def __init__(self, process: str | None = None) -> None:
        self.process = process or f"{socket.gethostname()}-{os.getpid()}"
        self._roles: dict[str, RoleHealth] = {}

    def set(self, role: str, state: RoleState, error: str | None = None) -> None:
        self._roles[role] = RoleHealth(role=role, state=state, since=time.time(), error=error)

    def clear(self) -> None:
        self._roles.clear()

    def report(self) -> ProcessHealth:
        return ProcessHealth(process=self.process, reported_at=time.time(), roles=list(self._roles.values()))

    def snapshot(self) -> Mapping[str, str]:
        """Role -> "running", "stopped" or "failed: <error>": the admin app's `HealthSource` for /healthz."""
        return {
            name: f"failed: {role.error}" if role.state is RoleState.FAILED else role.state.value
            for name, role in self._roles.items()
        }


BOARD = HealthBoard()  # this process's roles
