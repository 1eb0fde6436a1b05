"""The live feed: this process reads every server's turns, lines and control events from the hub and hands each new
transcript line to the open WebSockets, and keeps what the page shows of each NPC (talking, last turn, latency).

It reads through a consumer group of its own (named after this process), so every admin process sees every event
while the brain and gateway groups are untouched. Events older than the feed's start are history (a new group
starts at the oldest retained entry): they are left to the transcript files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from host.admin.lines import ViewLine, event_view_line
from host.bus import Bus, StreamKind, consumer_name, stream_name
from host.events import Event, NpcTurnEnded, NpcTurnStarted

log = logging.getLogger(__name__)

FEED_STREAMS = (StreamKind.SAID, StreamKind.TURNS, StreamKind.CONTROL, StreamKind.ADVICE)
SUBSCRIBER_QUEUE = 256  # lines a slow page may fall behind before it is dropped (it reloads the history)
MAX_SUBSCRIBERS = 100
RECENT_LINES = 200


@dataclass
class NpcLive:
    talking_to: str | None = None
    last_player: str | None = None
    last_reply: str | None = None
    last_turn_ts: float | None = None
    last_latency_ms: float | None = None


@dataclass(frozen=True)
class FeedItem:
    server: str
    line: ViewLine


@dataclass(eq=False)  # compared by identity: each open page is its own subscriber
class Subscriber:
    queue: asyncio.Queue[FeedItem | None] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE))


class TooManySubscribersError(Exception):
    pass


class LiveFeed:
    def __init__(self, bus: Bus, servers: list[str]) -> None:
        self.bus = bus
        self.servers = servers
        self.started_at = time.time()
        self.npcs: dict[tuple[str, str], NpcLive] = {}
        self.recent: deque[FeedItem] = deque(maxlen=RECENT_LINES)
        self._subscribers: set[Subscriber] = set()

    async def run(self, stop: asyncio.Event) -> None:
        group = consumer_name("admin-live")
        async with asyncio.TaskGroup() as tasks:
            for server in self.servers:
                for kind in FEED_STREAMS:
                    stream = stream_name(server, kind)
                    tasks.create_task(self.bus.consume(stream, group, group, self.on_event, stop=stop))

    def npc(self, server: str, npc: str) -> NpcLive:
        return self.npcs.setdefault((server, npc), NpcLive())

    async def on_event(self, event: Event) -> None:
        if event.ts < self.started_at - 1.0:
            return
        self._track(event)
        line = event_view_line(event)
        if line is None:
            return
        item = FeedItem(event.server, line)
        self.recent.append(item)
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("a live transcript page fell %d lines behind; it is disconnected", SUBSCRIBER_QUEUE)
                self.unsubscribe(subscriber)
                with contextlib.suppress(asyncio.QueueFull):
                    subscriber.queue.get_nowait()
                    subscriber.queue.put_nowait(None)

    def _track(self, event: Event) -> None:
        if isinstance(event, NpcTurnStarted):
            self.npc(event.server, event.npc).talking_to = event.player
        elif isinstance(event, NpcTurnEnded):
            state = self.npc(event.server, event.npc)
            state.talking_to = None
            state.last_player, state.last_reply, state.last_turn_ts = event.player, event.reply, event.ts
            state.last_latency_ms = event.timings_ms.get("first_audio", event.timings_ms.get("total"))

    def subscribe(self) -> Subscriber:
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise TooManySubscribersError(f"{MAX_SUBSCRIBERS} live transcript pages are open already")
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every open live page's stream (the server is shutting down)."""
        for subscriber in list(self._subscribers):
            self.unsubscribe(subscriber)
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)
