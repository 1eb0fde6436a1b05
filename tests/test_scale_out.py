"""Scale-out (issue 3): brain processes sharing one Redis and one PostgreSQL database through the "brain" group.

The crash test: two `npc-host run --roles brain` processes answer 200 lines from six players; one is SIGKILLed in the
middle of a turn; the survivor claims what the dead one held. Every line gets exactly one NPC reply in the database
and exactly one NPC line in the transcript: none lost, none doubled. The only double is the Ollama server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from host.brain.engine import turn_id_for
from host.bus import Bus, RedisBus, StreamKind, stream_name
from host.config import BusSettings
from host.events import NpcTurnEnded, PlayerSaid, Position
from host.store import Store
from host.store.models import Turn
from host.transcript.lines import SpokenLine
from host.transcript.reader import read_transcript
from tests.bus_support import Collector, consuming, wait_until
from tests.doubles.ollama_server import OllamaWireServer
from tests.host_process import HostProcess, host_env

pytest_plugins = ["tests.store_fixtures"]

SERVER = "example"
SAID = stream_name(SERVER, StreamKind.SAID)
LINES = 200
WAIT_S = 80.0  # a bound for a loaded machine, never a speed check
# Each player stands a block from one NPC, where nobody else answers (see npc_profiles/example).
PLAYERS = {
    "Alex": ("bram", Position(x=4.5, y=64.0, z=-2.5)),
    "Steve": ("bram", Position(x=5.5, y=64.0, z=-3.5)),
    "Kai": ("birch", Position(x=1.5, y=64.0, z=9.5)),
    "Mia": ("birch", Position(x=2.5, y=64.0, z=8.5)),
    "Robin": ("hilde", Position(x=-7.5, y=64.0, z=5.5)),
    "Sam": ("hilde", Position(x=-6.5, y=64.0, z=6.5)),
}


@dataclass
class Cluster:
    """Brain processes on one hub and one database, and what the test looks at: the bus, the store, the transcript."""

    workdir: Path
    bus: Bus
    store: Store
    env: dict[str, str]
    hosts: list[HostProcess]

    async def start_brain(self, name: str, ollama_url: str) -> HostProcess:
        own = {"NPC_HOST_DATA_DIR": str(self.workdir / f"data-{name}"), "NPC_HOST_LLM__OLLAMA_URL": ollama_url}
        env = self.env | own
        host = HostProcess.start(["run", "--roles", "brain"], env, self.workdir, name=name)
        self.hosts.append(host)
        await host.wait_consuming(self.bus, SERVER)
        return host

    async def stored_turns(self) -> list[tuple[str, str | None, str]]:
        """(cause id, turn id, reply) of every turn in the database."""

        async def query(session: AsyncSession) -> list[tuple[str, str | None, str]]:
            rows = await session.execute(select(Turn.cause_id, Turn.turn_id, Turn.npc_reply))
            return [(cause, turn, reply) for cause, turn, reply in rows.all()]

        return await self.store.db.run(query)

    async def turn_count(self) -> int:
        return sum((await self.store.conversations.turn_counts(SERVER)).values())

    async def npc_lines(self) -> list[SpokenLine]:
        lines: list[SpokenLine] = []
        for path in sorted((self.workdir / "transcripts" / SERVER).glob("*.log")):
            parsed = await read_transcript(path)
            assert parsed.errors == [], parsed.errors
            lines += [p.line for p in parsed.lines if isinstance(p.line, SpokenLine) and p.line.source == "npc"]
        return lines

    async def all_handled(self) -> bool:
        """Nothing pending (a dead process's entries were claimed and acked) and nothing left to deliver."""
        info = await self.bus.stream_info(SAID)
        return all(group.pending == 0 and group.lag == 0 for group in info.groups if group.name == "brain")

    async def wait_for(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not await check():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {host.log_path.name}:\n{host.output()[-3000:]}" for host in self.hosts)
                raise AssertionError(f"gave up waiting for: {what}\n{logs}")
            await asyncio.sleep(0.25)  # the processes under test need the CPU more than this poll


@pytest_asyncio.fixture(loop_scope="function")
async def cluster(
    tmp_path: Path, repo_root: Path, redis_url: str, redis_prefix: str, postgres_store: Store
) -> AsyncIterator[Cluster]:
    """Brain processes on this test's Redis key prefix and its own fresh PostgreSQL database."""
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / SERVER)
    env = host_env(
        tmp_path,
        NPC_HOST_REDIS_URL=redis_url,
        NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
        NPC_HOST_BUS__CLAIM_IDLE_MS="1500",  # the survivor claims a dead process's entries quickly
        NPC_HOST_DATABASE_URL=postgres_store.db.url.render_as_string(hide_password=False),
        NPC_HOST_LLM__BACKEND="ollama",
    )
    bus = RedisBus(redis_url, BusSettings(key_prefix=redis_prefix), client_name="test-scale-out")
    await bus.connect()
    started = Cluster(tmp_path, bus, postgres_store, env, [])
    try:
        yield started
    finally:
        for host in started.hosts:
            host.stop_now()
        await bus.aclose()


def _ended(collector: Collector) -> list[NpcTurnEnded]:
    return [event for event in collector.events if isinstance(event, NpcTurnEnded)]


def _lines() -> list[PlayerSaid]:
    players = list(PLAYERS)
    lines = []
    for n in range(LINES):
        player = players[n % len(players)]
        text = f"Question {n} from {player}: what is the news today?"
        lines.append(PlayerSaid(server=SERVER, player=player, text=text, position=PLAYERS[player][1]))
    return lines


async def _kill_mid_turn(bus: Bus, host: HostProcess) -> None:
    """SIGKILL `host` while it holds an entry it has not acked (a turn in flight or not yet acked).

    Frozen (SIGSTOP) it cannot ack, so what `pending` shows is what it holds when it dies.
    """
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        os.kill(host.pid, signal.SIGSTOP)
        held = [entry.entry_id for entry in await bus.pending(SAID, "brain") if entry.consumer == host.consumer]
        if held:
            os.kill(host.pid, signal.SIGKILL)
            await host.wait_exit()
            return
        os.kill(host.pid, signal.SIGCONT)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{host.consumer} never held an entry:\n{host.output()}")


async def test_two_brains_one_killed_every_line_answered_exactly_once(cluster: Cluster) -> None:
    bus = cluster.bus
    replies = [f"Aye, {n} is a fine number. The news is quiet today." for n in range(LINES * 3)]
    announced = Collector()
    async with (
        OllamaWireServer(replies=replies, chunk_delay_s=0.01) as ollama,
        consuming(bus, stream_name(SERVER, StreamKind.TURNS), "observer", "o1", announced),
    ):
        doomed, survivor = await asyncio.gather(
            cluster.start_brain("brain-a", ollama.url), cluster.start_brain("brain-b", ollama.url)
        )
        lines = _lines()
        await bus.publish_many(SAID, lines)

        async def half_answered() -> bool:
            return await cluster.turn_count() >= LINES // 2

        await cluster.wait_for(half_answered, "half of the lines answered")
        await _kill_mid_turn(bus, doomed)

        async def everything_answered() -> bool:
            answered = await cluster.turn_count() >= LINES and len(await cluster.npc_lines()) >= LINES
            return answered and await cluster.all_handled()

        await cluster.wait_for(everything_answered, "every line answered after the crash")

        await _assert_each_line_answered_once(cluster, lines, announced)

        survivor.signal(signal.SIGTERM)
        assert await survivor.wait_exit() == 0, survivor.output()


async def _assert_each_line_answered_once(cluster: Cluster, lines: list[PlayerSaid], announced: Collector) -> None:
    """One turn per line in the database, by the NPC the player stands next to; one NPC line per turn in the
    transcript, with the same words; one announced end per turn on the hub."""
    expected = {f"{said.id}:{PLAYERS[said.player][0]}": turn_id_for(said, PLAYERS[said.player][0]) for said in lines}
    stored = await cluster.stored_turns()
    assert Counter(cause for cause, _, _ in stored) == Counter(list(expected))
    assert {cause: turn for cause, turn, _ in stored} == expected
    npc_lines = await cluster.npc_lines()
    assert Counter(line.tags["turn"] for line in npc_lines) == Counter(expected.values())
    replies = {turn: reply for _, turn, reply in stored}
    assert all(line.text == replies[line.tags["turn"]] for line in npc_lines)
    await wait_until(lambda: len(_ended(announced)) >= len(lines), "every turn's end announced on the hub")
    assert Counter(event.turn_id for event in _ended(announced)) == Counter(expected.values())


async def test_sigterm_lets_the_turn_in_flight_finish_then_exits_0(cluster: Cluster) -> None:
    reply = "Sit down by the fire, friend. The stew will be ready before the bell rings twice."
    async with OllamaWireServer(replies=[reply], chunk_delay_s=0.02) as ollama:  # done within the 1 s drain
        host = await cluster.start_brain("brain", ollama.url)
        said = PlayerSaid(server=SERVER, player="Alex", text="Is there stew?", position=PLAYERS["Alex"][1])
        await cluster.bus.publish(SAID, said)

        async def turn_in_flight() -> bool:
            return bool(ollama.chat_bodies)

        await cluster.wait_for(turn_in_flight, "Bram started answering")
        host.signal(signal.SIGTERM)
        assert await host.wait_exit() == 0, host.output()

        stored = await cluster.store.conversations.turn_by_cause(f"{said.id}:bram")
        assert stored is not None
        assert (stored.npc_reply, stored.interrupted) == (reply, False)
        assert [line.text for line in await cluster.npc_lines()] == [reply]
        assert await cluster.bus.pending(SAID, "brain") == []
