"""The seam between the host and a game: a `GameAdapter` per game, found through the `npc_host.integrations`
entry-point group, so a third-party package adds a game without touching the host:

    [project.entry-points."npc_host.integrations"]
    minecraft = "integrations.minecraft.adapter:MinecraftAdapter"

The entry point's name is the `game` a server profile names.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import ClassVar

from host.config import Settings
from host.errors import NpcHostError
from host.events import Event
from host.profiles.schema import NpcProfile, ServerProfile

ENTRY_POINT_GROUP = "npc_host.integrations"

log = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]


class IntegrationError(NpcHostError):
    code = "integration"


class GameAdapter(ABC):
    """Connects one game server to the hub: turns what happens in the game into events (`produces`) and acts out
    the events it `consumes` in the game. `start` returns once the adapter runs; a server that is not reachable yet
    is not an error (the adapter retries with backoff), a wrong configuration is."""

    consumes: ClassVar[frozenset[str]]
    produces: ClassVar[frozenset[str]]

    def __init__(
        self,
        server: ServerProfile,
        npcs: Sequence[NpcProfile],
        settings: Settings,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        """`settings` is the host's; each adapter reads its own section. Secrets come from `environ`."""
        self.server = server
        self.npcs = list(npcs)
        self.settings = settings
        self.environ = environ

    @abstractmethod
    async def start(self, publish: Publish) -> None:
        """Begin producing events through `publish`."""

    @abstractmethod
    async def handle(self, event: Event) -> None:
        """Act out one consumed event in the game."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every task and leave the game as it was found (no NPC bodies left behind)."""


def discover_adapters() -> dict[str, type[GameAdapter]]:
    """Every installed adapter that loads, by game name. A broken plugin is logged, naming its entry point, and left
    out: it never stops the other games."""
    adapters, broken = _load_adapters()
    for error in broken.values():
        log.error("%s", error)
    return adapters


def adapter_for(game: str) -> type[GameAdapter]:
    adapters, broken = _load_adapters()
    if game in broken:
        raise broken[game]
    if game not in adapters:
        known = ", ".join(sorted(adapters)) or "none"
        raise IntegrationError(f"no integration for game '{game}' is installed (installed: {known})")
    return adapters[game]


def _load_adapters() -> tuple[dict[str, type[GameAdapter]], dict[str, IntegrationError]]:
    adapters: dict[str, type[GameAdapter]] = {}
    broken: dict[str, IntegrationError] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:
            broken[entry.name] = IntegrationError(f"integration '{entry.name}' ({entry.value}) failed to load: {exc}")
            continue
        if not (isinstance(loaded, type) and issubclass(loaded, GameAdapter)):
            broken[entry.name] = IntegrationError(
                f"integration '{entry.name}' ({entry.value}) is not a GameAdapter subclass"
            )
            continue
        adapters[entry.name] = loaded
    return adapters, broken
