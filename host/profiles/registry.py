"""The live profiles of every server, reloaded when a file under the profiles folder changes.

Callers look an NPC up on every turn (`registry.npc(server, npc_id)`), so an edit applies to the next turn. An edit
that does not validate keeps the last good version of what it touched and is reported, never applied half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from watchfiles import Change

from host.file_watch import watch_changes
from host.profiles.loader import ServerLoad, load_all
from host.profiles.lookup import UnknownNpcError, find_npc, unknown_server
from host.profiles.problems import Problem, ProfileError
from host.profiles.schema import NpcProfile, ServerProfile

__all__ = ["ProfileRegistry", "UnknownNpcError"]  # UnknownNpcError lives in lookup.py; callers import it here

log = logging.getLogger(__name__)

ProblemListener = Callable[[list[Problem]], None]


@dataclass(frozen=True)
class _ServerState:
    server: ServerProfile
    npcs: Mapping[str, NpcProfile]
    npc_files: Mapping[str, Path]


class ProfileRegistry:
    def __init__(self, root: Path, *, debounce_ms: int = 200) -> None:
        self.root = root
        self.on_problems: list[ProblemListener] = []
        # Called after every reload, e.g. to drop what was built from the previous profiles (prompt prefixes).
        self.on_reload: list[Callable[[], None]] = []
        self._debounce_ms = debounce_ms
        self._by_folder: dict[Path, _ServerState] = {}
        self._by_name: dict[str, _ServerState] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> list[Problem]:
        """Load every server, then follow changes. Returns the problems of the first load."""
        problems = await self.reload()
        self._stop.clear()
        self._watch_task = asyncio.create_task(self._watch(), name=f"profiles-watch:{self.root}")
        return problems

    async def stop(self) -> None:
        self._stop.set()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None

    async def reload(self) -> list[Problem]:
        """Read the files again now; report and return the problems found."""
        async with self._lock:
            loads = await asyncio.to_thread(load_all, self.root)
            self._by_folder = {load.directory: state for load in loads if (state := self._next_state(load))}
            self._by_name = {state.server.name: state for state in self._by_folder.values()}
        problems = [problem for load in loads for problem in load.problems]
        if problems:
            self._report(problems)
        for listener in self.on_reload:
            listener()
        return problems

    def server_names(self) -> list[str]:
        return sorted(self._by_name)

    def server(self, name: str) -> ServerProfile:
        return self._state(name).server

    def npcs(self, server: str) -> Mapping[str, NpcProfile]:
        return self._state(server).npcs

    def npc(self, server: str, npc_id: str) -> NpcProfile:
        """The current good profile; call it per turn so edits apply to the next turn."""
        npc = self._state(server).npcs.get(npc_id)
        if npc is None:
            raise UnknownNpcError(f"server '{server}' has no NPC '{npc_id}'")
        return npc

    def find_npc(self, server: str, wanted: str) -> NpcProfile:
        """The NPC a user named by id, name or alias (any case); a miss lists the NPCs and the closest one."""
        return find_npc(self._state(server).npcs, server, wanted)

    def _state(self, server: str) -> _ServerState:
        state = self._by_name.get(server)
        if state is None:
            raise unknown_server(server, self._by_name, self.root)
        return state

    def _next_state(self, load: ServerLoad) -> _ServerState | None:
        previous = self._by_folder.get(load.directory)
        if load.server is None:
            # A broken server.toml keeps the whole server as it was; a deleted one removes it.
            return previous if load.directory.joinpath("server.toml").is_file() else None
        npcs, files = dict(load.npcs), dict(load.npc_files)
        if previous is not None:
            for npc_id, path in previous.npc_files.items():
                if path in load.rejected_files and npc_id not in npcs:
                    npcs[npc_id], files[npc_id] = previous.npcs[npc_id], path
        return _ServerState(load.server, MappingProxyType(npcs), MappingProxyType(files))

    def _report(self, problems: list[Problem]) -> None:
        for problem in problems:
            log.warning("profile problem (last good version kept): %s", problem)
        for listener in self.on_problems:
            listener(problems)

    async def _watch(self) -> None:
        async for _changes in watch_changes(
            self.root, watch_filter=_is_profile_change, debounce=self._debounce_ms, stop_event=self._stop
        ):
            try:
                await self.reload()
            except ProfileError as exc:
                log.error("profiles not reloaded: %s", exc)
            except Exception:  # a failing listener must not end hot reload for everyone
                log.exception("error while reloading profiles from %s", self.root)


def _is_profile_change(change: Change, path: str) -> bool:
    # A new folder counts too: a server.toml written into it before the recursive watch reaches the folder raises no
    # event of its own, and the new server would never appear.
    name = Path(path).name
    if name.startswith("."):
        return False
    return name.endswith(".toml") or change == Change.deleted or (change == Change.added and Path(path).is_dir())
