"""Trying a line against a draft NPC profile before it is saved, through the hub: the admin package runs no model.

The desk publishes an `NpcTrial` on the server's `trials` stream; one brain (the shared group "brain") answers with
an `NpcTrialReply` carrying the trial's id, which this process reads through a consumer group of its own and hands
to the request waiting for it. Nobody answering within the wait is a clear error, not a hang.
"""

from __future__ import annotations

import asyncio
import time

from host.bus import Bus, StreamKind, consumer_name, stream_for, stream_name
from host.errors import NpcHostError
from host.events import Event, NpcTrial, NpcTrialReply
from host.profiles.schema import NpcProfile

MAX_WAITING = 4  # trials in flight in this process: each one costs a whole LLM turn on the brain
TRIAL_WAIT_S = 30.0


class TrialError(NpcHostError):
    code = "trial_failed"


class TrialBusyError(TrialError):
    code = "trial_busy"


class NoBrainAnsweredError(TrialError):
    code = "trial_timeout"


class TrialDesk:
    def __init__(self, bus: Bus, servers: list[str], *, wait_s: float = TRIAL_WAIT_S) -> None:
        self.bus = bus
        self.servers = servers
        self.wait_s = wait_s
        self._waiting: dict[str, asyncio.Future[NpcTrialReply]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        group = consumer_name("admin-trials")
        async with asyncio.TaskGroup() as tasks:
            for server in self.servers:
                stream = stream_name(server, StreamKind.TRIALS)
                tasks.create_task(self.bus.consume(stream, group, group, self.on_event, stop=stop))

    async def on_event(self, event: Event) -> None:
        if isinstance(event, NpcTrialReply):
            waiting = self._waiting.get(event.trial_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(event)

    async def try_line(self, server: str, profile: NpcProfile, player: str, text: str, author: str) -> NpcTrialReply:
        if server not in self.servers:
            raise TrialError(f"server {server!r} was not loaded when the host started; restart it to try lines there")
        if len(self._waiting) >= MAX_WAITING:
            raise TrialBusyError(f"{MAX_WAITING} lines are being tried already; wait for one to finish")
        trial = NpcTrial(
            server=server,
            profile=profile,
            player=player,
            text=text,
            author=author,
            deadline_ts=time.time() + self.wait_s,
        )
        reply: asyncio.Future[NpcTrialReply] = asyncio.get_running_loop().create_future()
        self._waiting[trial.id] = reply
        try:
            await self.bus.publish(stream_for(trial), trial)
            return await asyncio.wait_for(reply, self.wait_s)
        except TimeoutError:
            raise NoBrainAnsweredError(
                f"no brain answered within {self.wait_s:g} s: is a process with the brain role running?"
            ) from None
        finally:
            del self._waiting[trial.id]
