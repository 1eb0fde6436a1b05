"""NPC actions against the vanilla-behaving RCON double: what each action sends, and every refusal."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from host.brain.sentences import SentenceSplitter
from host.config import MinecraftSettings, Settings
from host.events import Event, NpcActed, NpcControl, NpcTurnEnded
from host.npc_actions import ActionSyntaxError, action_tags, parse_action
from host.profiles.schema import (
    ActionsSpec,
    NpcProfile,
    PersonaSpec,
    RconSpec,
    ServerProfile,
    StockItem,
    Vec3,
    WorldSpec,
)
from integrations.minecraft.adapter import MinecraftAdapter
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer

PASSWORD = "actions-Secret-pw"
VARIABLE = "NPC_HOST_TEST_ACTIONS_RCON"
STEP = re.compile(r"execute in \S+ run tp @e\[tag=npc_host\.bram,limit=1\] (\S+) (\S+) (\S+) facing \S+ \S+ \S+")


def _npc(npc_id: str, x: float, actions: ActionsSpec) -> NpcProfile:
    world = WorldSpec(position=Vec3(x=x, y=64, z=0), hearing_range=8, speaking_range=16)
    return NpcProfile(
        id=npc_id, name=npc_id.title(), persona=PersonaSpec(description=npc_id), world=world, actions=actions
    )


BRAM = _npc(
    "bram",
    0,
    ActionsSpec(
        allowed=["follow", "stop", "walk", "look", "give"],
        waypoints={"well": Vec3(x=3, y=64, z=0), "far_mill": Vec3(x=500, y=64, z=0)},
        stock={"bread": StockItem(item="minecraft:bread", stock=2, per_player_per_day=1, max_per_give=1)},
        speed=10.0,
    ),
)
ADA = _npc("ada", 4, ActionsSpec(stock={"bread": StockItem(item="minecraft:bread")}))


@dataclass
class Scene:
    adapter: MinecraftAdapter
    server: RconTestServer
    world: MinecraftWorld
    log: Path
    acted: asyncio.Queue[NpcActed]

    async def ask(self, npc: str, player: str, *actions: str, turn: str = "t1") -> list[NpcActed]:
        ended = NpcTurnEnded(
            server="village", npc=npc, player=player, turn_id=turn, cause_id="c", reply="...", actions=list(actions)
        )
        await self.adapter.handle(ended)
        return [self.acted.get_nowait() for _ in range(self.acted.qsize())]

    def chat(self, player: str, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"[12:00:01] [Server thread/INFO]: <{player}> {text}\n")

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait for a state of the double's world, re-checked after each command it receives."""
        async with asyncio.timeout(10):
            while not done():
                await self.server.wait_for_commands(".", len(self.server.commands) + 1)

    def steps(self) -> list[tuple[float, float, float]]:
        return [(float(m[1]), float(m[2]), float(m[3])) for c in self.server.commands if (m := STEP.fullmatch(c))]


@pytest_asyncio.fixture(loop_scope="function")
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    world = MinecraftWorld(players={"Alice": Player(2, 64, 0), "Bob_2": Player(1, 64, 1), "Op_Alice": Player(6, 64, 0)})
    log = tmp_path / "latest.log"
    log.write_text("")
    acted: asyncio.Queue[NpcActed] = asyncio.Queue()
    settings = Settings(
        data_dir=tmp_path / "data",
        minecraft=MinecraftSettings(positions_interval_s=0.02, log_poll_interval_s=0.02),
    )
    async with RconTestServer(PASSWORD, world) as srv:
        rcon = RconSpec(host="127.0.0.1", port=srv.port, password_env=VARIABLE)
        profile = ServerProfile(name="village", rcon=rcon, log_path=str(log), operators=["Op_Alice"])
        adapter = MinecraftAdapter(profile, [BRAM, ADA], settings, {VARIABLE: PASSWORD})
        positions_known = asyncio.Event()

        async def hub(event: Event) -> None:
            if isinstance(event, NpcActed):
                await acted.put(event)
            if event.type == "positions":
                positions_known.set()
            if isinstance(event, NpcControl):
                await adapter.handle(event)

        await adapter.start(hub)
        async with asyncio.timeout(10):
            await positions_known.wait()
        yield Scene(adapter, srv, world, log, acted)
        await adapter.stop()


def test_action_tags_are_parsed_and_never_spoken() -> None:
    reply = "[happy] Here, take this. [give bread] Now [follow] me to the well! [walk to the well]"
    assert action_tags(reply) == ["give bread", "follow", "walk to the well"]
    splitter = SentenceSplitter()
    sentences = [*splitter.feed(reply), *splitter.flush()]
    assert [(s.text, s.emotion) for s in sentences] == [("Here, take this.", "happy"), ("Now me to the well!", None)]
    assert parse_action("walk to the well").model_dump() == {"verb": "walk", "target": "well", "count": 1}
    assert parse_action("give 2 bread").describe() == "give 2 bread"
    for bad in ("dance", "give", "walk", "give 99 bread", "follow @a[distance=..5]"):
        with pytest.raises(ActionSyntaxError):
            parse_action(bad)
    assert action_tags("[give bread; op Mallory] [give @e]") == []  # not the shape of a tag: nothing to act on


async def test_give_from_stock_with_per_player_and_stock_limits(scene: Scene) -> None:
    [first] = await scene.ask("bram", "Alice", "give bread")
    assert (first.action, first.outcome, first.reason) == ("give bread", "performed", None)
    assert scene.world.given == [("Alice", "minecraft:bread", 1)]
    [again] = await scene.ask("bram", "Alice", "give bread", turn="t2")
    assert (again.outcome, again.reason) == ("refused", "player_limit")
    [too_many] = await scene.ask("bram", "Bob_2", "give 2 bread", turn="t3")
    assert (too_many.outcome, too_many.reason) == ("refused", "max_per_give")
    [bob] = await scene.ask("bram", "Bob_2", "give bread", turn="t4")
    assert bob.outcome == "performed"
    scene.world.players["Carl_3"] = Player(1, 64, -1)
    [carl] = await scene.ask("bram", "Carl_3", "give bread", turn="t5")
    assert (carl.outcome, carl.reason) == ("refused", "out_of_stock")  # a stock of 2
    [unknown] = await scene.ask("bram", "Carl_3", "give diamond", turn="t6")
    assert (unknown.outcome, unknown.reason) == ("refused", "not_in_stock")
    assert len(scene.world.given) == 2
    assert [c for c in scene.server.commands if c.startswith("give ")] == [
        "give Alice minecraft:bread 1",
        "give Bob_2 minecraft:bread 1",
    ]


async def test_a_turn_end_delivered_twice_gives_once(scene: Scene) -> None:
    await scene.ask("bram", "Alice", "give bread", turn="same")
    assert await scene.ask("bram", "Alice", "give bread", turn="same") == []
    assert len(scene.world.given) == 1


async def test_a_give_the_server_rejects_is_failed_and_not_counted(scene: Scene) -> None:
    scene.world.missing.add("give")
    [failed] = await scene.ask("bram", "Alice", "give bread")
    assert (failed.outcome, failed.reason) == ("failed", "unknown_command")
    scene.world.missing.discard("give")
    [retry] = await scene.ask("bram", "Alice", "give bread", turn="t2")
    assert retry.outcome == "performed"  # the rejected give did not use up Alice's bread for the day


async def test_an_action_the_profile_does_not_allow_is_dropped_and_recorded(scene: Scene) -> None:
    before = list(scene.server.commands)
    verdicts = await scene.ask("ada", "Alice", "give bread", "follow")
    assert [(v.npc, v.action, v.outcome, v.reason) for v in verdicts] == [
        ("ada", "give bread", "refused", "not_allowed"),
        ("ada", "follow", "refused", "not_allowed"),
    ]
    assert [c for c in scene.server.commands[len(before) :] if not c.startswith("execute as @a")] == []


async def test_walking_to_a_waypoint_is_smooth_steps_not_a_teleport(scene: Scene) -> None:
    [walk] = await scene.ask("bram", "Alice", "walk to the well")
    assert walk.outcome == "performed"
    async with asyncio.timeout(10):
        while scene.adapter.npc_positions["bram"].x != 3.0:  # noqa: ASYNC110 - the adapter's state, not the double's
            await asyncio.sleep(0.05)  # hearing and speaking now count from the well
    assert scene.steps()[-1] == (3.0, 64.0, 0.0)
    steps = [(0.0, 64.0, 0.0), *scene.steps()]
    assert len(steps) >= 3
    assert all(math.dist(a, b) <= 10.0 * 0.2 + 1e-6 for a, b in itertools.pairwise(steps))
    [far] = await scene.ask("bram", "Alice", "walk far_mill", turn="t2")
    assert (far.outcome, far.reason) == ("refused", "too_far")
    [nowhere] = await scene.ask("bram", "Alice", "walk to the moon", turn="t3")
    assert (nowhere.outcome, nowhere.reason) == ("refused", "unknown_place")


async def test_operators_start_and_stop_a_follow_with_npc_commands(scene: Scene) -> None:
    scene.chat("Op_Alice", "!npc act bram follow")
    async with asyncio.timeout(10):
        acted = await scene.acted.get()
        assert (acted.action, acted.outcome, acted.requested_by) == ("follow", "performed", "operator")
    await scene.until(lambda: len(scene.steps()) >= 2)
    scene.chat("Op_Alice", "!npc stop bram")
    async with asyncio.timeout(10):
        stopped = await scene.acted.get()
    assert (stopped.action, stopped.outcome) == ("stop", "performed")
    await asyncio.sleep(0.3)
    count = len(scene.steps())
    await asyncio.sleep(0.5)
    assert len(scene.steps()) == count  # no step after the stop
    x, _y, _z = scene.steps()[-1]
    assert x <= 6 - 2.5 + 1e-6  # it keeps its distance from the player it followed
    answers = [c for c in scene.server.commands if c.startswith("tellraw Op_Alice ")]
    assert any("follow performed" in c for c in answers) and any("stop performed" in c for c in answers)


async def test_look_turns_to_the_player(scene: Scene) -> None:
    [look] = await scene.ask("bram", "Alice", "look")
    assert look.outcome == "performed"
    assert scene.server.commands[-1] == (
        "execute as @e[tag=npc_host.bram,limit=1] at @s run tp @s ~ ~ ~ facing 2.000 65.620 0.000"
    )
