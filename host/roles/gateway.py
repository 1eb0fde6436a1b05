"""The gateway role: each server profile's game on the hub, through the `GameAdapter` installed for its `game`.

Per server: the adapter publishes what happens in the game (chat, positions, operators' `!npc` commands) on that
event's stream, and acts out the events it consumes (turns, control), read through the group "gateway". An
operator's `!npc reload` (`NpcControl(npc="*", action="reload")`) reloads the profiles here.

A server that is not reachable yet is not an error (its adapter retries with backoff and shows the NPCs once it
answers); one that cannot run (no `[rcon]`, password unset or rejected) is logged as a clear error for that server
and the others carry on. When a profile edit changes what the game shows (an NPC's name or `[world]`, the server's
connection settings), that server's adapter is replaced by one built from the new profiles: bodies are removed and
summoned again where they now stand. Persona, voice and lore edits reach the brain on its next turn instead.

The voice-mod bridge runs here too (`host/roles/bridge.py`): one `/bridge` endpoint for every server whose profile
has a `[bridge]` section, and `/voice` for the voice pages; it reads its streams through the same consumers as the
adapters. A `table` server has no adapter: its players come through voice pages, its positions from the game master.

Run the gateway role in one process only: it drives every server, and two adapters for one server would both
summon its NPCs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from host import metrics
from host.bus.delivery import Handler
from host.bus.streams import StreamKind, consumer_name, event_stream_kinds, stream_for, stream_name
from host.errors import NpcHostError
from host.events import Event, NpcControl
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import ServerProfile
from host.roles.bridge import VoiceBridge
from host.roles.services import HostServices
from integrations.base import GameAdapter, IntegrationError, discover_adapters

log = logging.getLogger(__name__)

GROUP = "gateway"
TABLE = "table"  # the server kind without a game server

_STREAM_KIND_BY_TYPE: dict[str, StreamKind] = {
    event_type.model_fields["type"].default: kind for event_type, kind in event_stream_kinds().items()
}


def consumed_streams(server: str, adapter_type: type[GameAdapter]) -> list[str]:
    """The streams of `server` that carry the event types the adapter consumes."""
    unknown = sorted(adapter_type.consumes - _STREAM_KIND_BY_TYPE.keys())
    if unknown:
        raise IntegrationError(f"{adapter_type.__name__} consumes unknown event type(s) {', '.join(unknown)}")
    kinds = {_STREAM_KIND_BY_TYPE[event_type] for event_type in adapter_type.consumes}
    return sorted(stream_name(server, kind) for kind in kinds)


def game_view(registry: ProfileRegistry, server: str) -> dict[str, Any]:
    """What an adapter acts on: the server's settings without its lore and defaults, and each NPC's name and world."""
    profile = registry.server(server)
    return {
        "server": profile.model_dump(exclude={"lore", "defaults", "bridge"}),
        "npcs": {npc.id: (npc.name, npc.world.model_dump()) for npc in registry.npcs(server).values()},
    }


class ServerLink:
    """One server's adapter: started, fed the consumed events, replaced when its game view changes, stopped."""

    def __init__(
        self,
        services: HostServices,
        server: str,
        adapter_type: type[GameAdapter],
        environ: Mapping[str, str],
    ) -> None:
        self.services = services
        self.server = server
        self.adapter_type = adapter_type
        self.environ = environ
        self.adapter: GameAdapter | None = None
        self.view: dict[str, Any] | None = None
        # Serialises acting out events with replacing the adapter, so no event reaches a stopped one.
        self._lock = asyncio.Lock()

    @property
    def streams(self) -> list[str]:
        return consumed_streams(self.server, self.adapter_type)

    async def start(self) -> None:
        async with self._lock:
            await self._start()

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def refresh(self) -> None:
        """Rebuild the adapter when a reload changed what the game shows of this server."""
        try:
            view = game_view(self.services.registry, self.server)
        except NpcHostError:
            log.warning("server '%s' is no longer in the profiles; restart the host to disconnect it", self.server)
            return
        if view == self.view:
            return
        log.info("profiles of server '%s' changed in the game; reconnecting its adapter", self.server)
        async with self._lock:
            await self._stop()
            await self._start()

    async def on_event(self, event: Event) -> None:
        if event.type not in self.adapter_type.consumes:
            return
        metrics.EVENTS_HANDLED.labels(type=event.type).inc()
        async with self._lock:
            if self.adapter is not None:
                await self.adapter.handle(event)
        if isinstance(event, NpcControl) and event.action == "reload":
            log.info("%s asked for a profile reload on '%s'", event.author, self.server)
            await self.services.registry.reload()

    async def publish(self, event: Event) -> None:
        await self.services.bus.publish(stream_for(event), event)

    async def _start(self) -> None:
        registry = self.services.registry
        self.view = game_view(registry, self.server)
        try:
            adapter = self.adapter_type(
                registry.server(self.server),
                list(registry.npcs(self.server).values()),
                self.services.settings,
                self.environ,
            )
        except NpcHostError as exc:
            self._report(exc)
            return
        try:
            await adapter.start(self.publish)
        except NpcHostError as exc:
            # No stop(): it would act in the game through a connection that just refused us (the Minecraft adapter's
            # start fails before it spawns anything, and its client closes a rejected connection itself).
            self._report(exc)
            return
        self.adapter = adapter

    async def _stop(self) -> None:
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            await adapter.stop()

    def _report(self, exc: NpcHostError) -> None:
        metrics.ERRORS_TOTAL.labels(code=exc.code).inc()
        log.error("server '%s' is not connected to the game: %s", self.server, exc.message)


class GatewayRole:
    name = "gateway"

    def __init__(
        self,
        services: HostServices,
        *,
        adapters: Mapping[str, type[GameAdapter]] | None = None,
        environ: Mapping[str, str] = os.environ,
        games: bool = True,
    ) -> None:
        """`adapters` by game name (default: the installed integrations); secrets are read from `environ`.
        `games=False` runs the voice bridge alone (the demo's and the bench's scenes have no game to drive)."""
        self.services = services
        self.games = games
        self.adapters = dict(adapters) if adapters is not None else discover_adapters()
        self.environ = environ
        self.bridge = VoiceBridge(services, environ)

    def links(self) -> list[ServerLink]:
        links: list[ServerLink] = []
        if not self.games:
            return links
        registry = self.services.registry
        warn_shared_targets([registry.server(server) for server in registry.server_names()])
        for server in registry.server_names():
            game = registry.server(server).game
            if game == TABLE:
                continue  # no game to connect: the voice bridge and the game master's map are its whole gateway
            adapter_type = self.adapters.get(game)
            if adapter_type is None:
                installed = ", ".join(sorted(self.adapters)) or "none"
                log.error(
                    "server '%s' needs the '%s' integration, which is not installed (%s)", server, game, installed
                )
                continue
            links.append(ServerLink(self.services, server, adapter_type, self.environ))
        return links

    async def run(self, stop: asyncio.Event) -> None:
        bus, registry = self.services.bus, self.services.registry
        consumer = consumer_name(self.name)
        links = self.links()
        bridge = self.bridge
        reloaded = asyncio.Event()
        registry.on_reload.append(reloaded.set)
        try:
            await asyncio.gather(*(link.start() for link in links))
            driven = [link.server for link in links if link.adapter is not None]
            log.info("gateway drives %s", ", ".join(f"'{server}'" for server in driven) or "no server")
            await bridge.start()
            async with asyncio.TaskGroup() as tasks:
                for stream, handler in _stream_handlers(links, bridge).items():
                    tasks.create_task(bus.consume(stream, GROUP, consumer, handler, stop=stop))
                tasks.create_task(_follow_reloads(links, bridge.refresh, reloaded, stop))
                tasks.create_task(bridge.open_on_first_token(stop))
                await stop.wait()
                reloaded.set()  # wakes the reload follower so it sees the stop
                # Out of the game first (NPC bodies removed): the consumers may take the whole drain time to end, and
                # a stop cut off by the runner's deadline after them left bodies standing in the world.
                await asyncio.gather(*(link.stop() for link in links))
        finally:
            registry.on_reload.remove(reloaded.set)
            await bridge.close()
            await asyncio.gather(*(link.stop() for link in links))  # after a failure; a no-op once stopped


def warn_shared_targets(servers: list[ServerProfile]) -> list[str]:
    """Warn when two server profiles point at one RCON address or one log file: both would drive the same game (every
    NPC summoned and every line answered twice), typically after copying the example folder and keeping it."""
    by_target: defaultdict[str, list[str]] = defaultdict(list)
    for server in servers:
        if server.rcon is not None:
            host = "127.0.0.1" if server.rcon.host.lower() == "localhost" else server.rcon.host.lower()
            by_target[f"RCON address {host}:{server.rcon.port}"].append(server.name)
        if server.log_path:
            by_target[f"log file {Path(server.log_path).resolve()}"].append(server.name)
    warnings = [
        f"servers {', '.join(repr(name) for name in names)} share the {target}: they drive one game twice; "
        "remove or move the copy you do not use out of the profiles folder"
        for target, names in by_target.items()
        if len(names) > 1
    ]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _stream_handlers(links: list[ServerLink], bridge: VoiceBridge) -> dict[str, Handler]:
    """One consumer per stream, handing each event to every part of the gateway that reads that stream."""
    readers: defaultdict[str, list[Handler]] = defaultdict(list)
    # The bridge first: it only touches memory, so a barge-in never waits behind an adapter's RCON round trip.
    for stream, handler in bridge.handlers().items():
        readers[stream].append(handler)
    for link in links:
        for stream in link.streams:
            readers[stream].append(link.on_event)
    return {stream: _fan_out(handlers) for stream, handlers in readers.items()}


def _fan_out(handlers: list[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    async def each(event: Event) -> None:
        for handler in handlers:
            await handler(event)

    return each


async def _follow_reloads(
    links: list[ServerLink], refresh_bridge: Callable[[], None], reloaded: asyncio.Event, stop: asyncio.Event
) -> None:
    while True:
        await reloaded.wait()
        if stop.is_set():
            return
        reloaded.clear()
        for link in links:
            await link.refresh()
        refresh_bridge()
