"""Each role's state in this process, for /healthz: running, stopped, or failed with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class RoleHealth:
    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    def watch(self, name: str, task: asyncio.Task[None]) -> None:
        self._states[name] = "running"
        task.add_done_callback(lambda done: self._ended(name, done))

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._states[name] = "stopped"
        elif (error := task.exception()) is not None:
            self._states[name] = f"failed: {type(error).__name__}"
        else:
            self._states[name] = "stopped"

    def snapshot(self) -> Mapping[str, str]:
        return dict(self._states)
