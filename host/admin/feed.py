"""The live feed: this process reads every server's turns, lines and control events from the hub and hands each new
transcript line to the open WebSockets, and keeps what the page shows of each NPC (talking, last turn, latency).

It reads through a consumer group of its own (named after this process), so every admin process sees every event
while the brain and gateway groups are untouched. Events older than the feed's start are history (a new group
starts at the oldest retained entry): they are left to the transcript files.

A player's line arrives before any NPC decided to answer it, so it comes without an addressee; when a turn answering
it starts (or ends, for a redelivered one), the line goes out again addressed to that NPC, with the same `ref`, as
the transcript file writes it. So a page filtering by NPC shows the conversation: the lines to the NPC and its
replies. The `said` and `turns` streams are read apart, so a turn seen before its line is remembered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TypeVar

from host.admin.lines import ViewLine, addressed_player_line, event_view_line
from host.bus import Bus, StreamKind, consumer_name, stream_name
from host.events import Event, NpcTurnCut, NpcTurnEnded, NpcTurnStarted, PlayerSaid

log = logging.getLogger(__name__)

FEED_STREAMS = (StreamKind.SAID, StreamKind.TURNS, StreamKind.CONTROL, StreamKind.ADVICE)
SUBSCRIBER_QUEUE = 256  # lines a slow page may fall behind before it is dropped (it reloads the history)
MAX_SUBSCRIBERS = 100
RECENT_LINES = 200
REMEMBERED_SAID = 1024  # recent player lines (and the NPCs answering them), to address them when their turn starts


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
        self._said: OrderedDict[str, PlayerSaid] = OrderedDict()  # player lines by event id
        self._answering: OrderedDict[str, set[str]] = OrderedDict()  # player line id -> the NPCs whose turn answers it

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
        for line in self._lines(event):
            self._deliver(FeedItem(event.server, line))

    def _lines(self, event: Event) -> list[ViewLine]:
        if isinstance(event, PlayerSaid):
            _remember(self._said, event.id, event)
            answered_by = sorted(self._answering.get(event.id, ()))
            if answered_by:  # its turns were read first
                return [addressed_player_line(event, npc) for npc in answered_by]
        lines = []
        if isinstance(event, NpcTurnStarted | NpcTurnEnded):
            answering = self._answering.get(event.cause_id)
            if answering is None:
                answering = _remember(self._answering, event.cause_id, set())
            said = self._said.get(event.cause_id)
            if event.npc not in answering and said is not None:
                lines.append(addressed_player_line(said, event.npc))
            answering.add(event.npc)
        line = event_view_line(event)
        return [*lines, line] if line is not None else lines

    def _deliver(self, item: FeedItem) -> None:
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
        elif isinstance(event, NpcTurnCut):
            # Cut in the players' ears: it talks no more, and a turn cut before its first word never ends.
            self.npc(event.server, event.npc).talking_to = None
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


_V = TypeVar("_V")


def _remember(memory: OrderedDict[str, _V], key: str, value: _V) -> _V:
    """Keep `value` under `key`, forgetting the oldest beyond `REMEMBERED_SAID`."""
    memory[key] = value
    while len(memory) > REMEMBERED_SAID:
        memory.popitem(last=False)
    return value
