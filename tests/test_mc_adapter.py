"""The Minecraft adapter end to end: the RCON double plays the server, a log file the test appends to plays its log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio

from host.bus.errors import BusUnavailableError
from host.config import MinecraftSettings, Settings
from host.events import AdminNote, Event, NpcControl, NpcSentence, NpcTurnStarted, PlayerSaid, Position, Positions
from host.profiles.schema import NpcProfile, PersonaSpec, RconSpec, ServerProfile, Vec3, WorldSpec
from integrations.base import adapter_for
from integrations.minecraft.adapter import MinecraftAdapter
from integrations.minecraft.rcon import RconAuthError
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer

PASSWORD = "adapter-Secret-pw"
VARIABLE = "NPC_HOST_TEST_ADAPTER_RCON"
E = TypeVar("E", bound=Event)


def _npc(npc_id: str, name: str, x: float, body: str = "villager") -> NpcProfile:
    world = WorldSpec.model_validate(
        {"position": Vec3(x=x, y=64, z=0), "hearing_range": 8, "speaking_range": 16, "body": body}
    )
    return NpcProfile(id=npc_id, name=name, persona=PersonaSpec(description=name), world=world)


NPCS = [_npc("bram", "Bram", 0), _npc("ada", "Ada", 100, "armor_stand")]
FAST = Settings(
    minecraft=MinecraftSettings(positions_interval_s=0.02, log_poll_interval_s=0.02, rcon_backoff_max_s=0.05)
)


@dataclass
class Scene:
    adapter: MinecraftAdapter
    server: RconTestServer
    world: MinecraftWorld
    log: Path
    events: asyncio.Queue[Event]

    def chat(self, player: str, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"[12:00:01] [Server thread/INFO]: <{player}> {text}\n")

    async def next(self, kind: type[E]) -> E:
        async with asyncio.timeout(10):
            while not isinstance(event := await self.events.get(), kind):
                pass
        return event

    async def commands_matching(self, pattern: str, count: int = 1) -> list[str]:
        async with asyncio.timeout(10):
            return await self.server.wait_for_commands(pattern, count)


def _profile(port: int, log: Path) -> ServerProfile:
    rcon = RconSpec(host="127.0.0.1", port=port, password_env=VARIABLE)
    return ServerProfile(name="village", rcon=rcon, log_path=str(log), operators=["Op_Alice"])


@pytest_asyncio.fixture(loop_scope="function")
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    world = MinecraftWorld(
        players={"Alice": Player(3, 64, 0, yaw=90), "Op_Alice": Player(50, 64, 50), "Far_Fred": Player(400, 64, 0)}
    )
    log = tmp_path / "latest.log"
    log.write_text("[11:59:00] [Server thread/INFO]: <Alice> old chat before the host started\n")
    events: asyncio.Queue[Event] = asyncio.Queue()
    async with RconTestServer(PASSWORD, world) as srv:
        adapter = MinecraftAdapter(_profile(srv.port, log), NPCS, FAST, {VARIABLE: PASSWORD})

        async def hub(event: Event) -> None:
            """The hub: every event is seen by the test, and the ones the gateway consumes come back to it."""
            await events.put(event)
            if event.type in adapter.consumes:
                await adapter.handle(event)

        await adapter.start(hub)
        scene = Scene(adapter, srv, world, log, events)
        await scene.next(Positions)
        yield scene
        await adapter.stop()


def test_the_adapter_is_found_by_its_entry_point() -> None:
    assert adapter_for("minecraft") is MinecraftAdapter


async def test_bodies_summoned_once_and_removed_on_stop(scene: Scene) -> None:
    assert [e.tags for e in scene.world.entities] == [["npc_host", "npc_host.bram"], ["npc_host", "npc_host.ada"]]
    await scene.adapter.stop()
    assert scene.world.entities == []


async def test_positions_include_players_and_npcs(scene: Scene) -> None:
    positions = await scene.next(Positions)
    by_name = {entity.name: entity for entity in positions.entities}
    assert (by_name["Alice"].x, by_name["Alice"].yaw, by_name["Alice"].kind) == (3, 90, "player")
    assert (by_name["bram"].x, by_name["bram"].kind) == (0, "npc")


async def test_chat_near_bram_is_published_with_the_speakers_position(scene: Scene) -> None:
    scene.chat("Alice", "hello Bram, any ale?")
    said = await scene.next(PlayerSaid)
    assert (said.player, said.text, said.source, said.server) == ("Alice", "hello Bram, any ale?", "chat", "village")
    assert said.position == Position(x=3, y=64, z=0, yaw=90)


async def test_reply_goes_to_players_in_bram_speaking_range_and_bram_faces_the_player(scene: Scene) -> None:
    await scene.adapter.handle(NpcTurnStarted(server="village", npc="bram", player="Alice", turn_id="t1", cause_id="c"))
    await scene.adapter.handle(
        NpcSentence(server="village", npc="bram", player="Alice", turn_id="t1", index=0, text='Two coppers, "friend".')
    )
    acted = [c for c in scene.server.commands if not c.startswith("execute as @a run data get")]  # not the polls
    assert acted[-2] == "execute as @e[tag=npc_host.bram,limit=1] at @s run tp @s ~ ~ ~ facing 3.000 65.620 0.000"
    assert acted[-1] == (
        "execute in minecraft:overworld run tellraw @a[x=0.000,y=64.000,z=0.000,distance=..16.000] "
        '[{"text":"","color":"gold","hoverEvent":{"action":"show_text",'
        '"contents":"Bram is a character played by npc-host, not a player"}},'
        '{"text":"[NPC] Bram: "},{"text":"Two coppers, \\"friend\\"."}]'
    )
    assert scene.world.shown[-1][0] == ["Alice"]  # Alice is 3 blocks away; Far_Fred and Op_Alice see nothing


async def test_events_for_other_servers_or_npcs_are_ignored(scene: Scene) -> None:
    before = len(scene.server.commands)
    await scene.adapter.handle(NpcSentence(server="castle", npc="bram", player="A", turn_id="t", index=0, text="x"))
    await scene.adapter.handle(NpcSentence(server="village", npc="zed", player="A", turn_id="t", index=0, text="x"))
    assert not [c for c in scene.server.commands[before:] if "tellraw" in c]


async def test_server_restart_mid_conversation(scene: Scene) -> None:
    scene.world.entities.clear()  # the world loses the bodies with the restart
    await scene.server.restart()
    await scene.commands_matching(r"run summon minecraft:villager", 2)  # the first command after it re-summons
    await scene.adapter.handle(
        NpcSentence(server="village", npc="bram", player="Alice", turn_id="t1", index=1, text="Where was I?")
    )
    assert len(scene.world.tagged("npc_host.bram")) == 1
    assert len(scene.world.tagged("npc_host.ada")) == 1
    assert "Where was I?" in [c for c in scene.server.commands if "tellraw" in c][-1]


async def test_operator_commands(scene: Scene) -> None:
    scene.chat("Op_Alice", "!npc pause bram")
    control = await scene.next(NpcControl)
    assert (control.npc, control.action, control.author) == ("bram", "pause", "Op_Alice")
    scene.chat("Op_Alice", "!npc note bram The mill burned down.")
    note = await scene.next(AdminNote)
    assert (note.npc, note.text, note.author) == ("bram", "The mill burned down.", "Op_Alice")
    replies = await scene.commands_matching(r"^tellraw Op_Alice ", 2)
    assert "bram: paused" in replies[0]
    assert "bram: note added" in replies[1]


async def test_operator_moves_an_npc_here(scene: Scene) -> None:
    scene.chat("Op_Alice", "!npc tp bram here")
    control = await scene.next(NpcControl)
    assert (control.action, control.position) == ("move", Position(x=50, y=64, z=50))
    await scene.commands_matching(r"^tellraw Op_Alice .*moving to")
    tp = [c for c in scene.server.commands if "run tp @e[tag=npc_host.bram,limit=1]" in c]
    assert tp == ["execute in minecraft:overworld run tp @e[tag=npc_host.bram,limit=1] 50.000 64.000 50.000"]
    await scene.adapter.handle(NpcSentence(server="village", npc="bram", player="A", turn_id="t", index=0, text="Hi"))
    assert "@a[x=50.000,y=64.000,z=50.000,distance=..16.000]" in scene.server.commands[-1]


async def test_non_operators_get_a_short_refusal(scene: Scene) -> None:
    scene.chat("Alice", "!npc say bram I am the king")
    refusal = await scene.commands_matching(r"^tellraw Alice ")
    assert "only this server's operators can use !npc" in refusal[0]
    scene.chat("Alice", "and now, normal chat")
    said = await scene.next(PlayerSaid)
    assert said.text == "and now, normal chat"  # the refused command itself never became a PlayerSaid
    while not scene.events.empty():
        assert not isinstance(scene.events.get_nowait(), NpcControl)


async def test_a_refused_command_is_logged_with_who_and_what_escaped(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    scene.chat("Alice", "!npc note bram the king\u2028is here")
    await scene.commands_matching(r"^tellraw Alice ")
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "'Alice'" in line and "!npc note bram" in line
    assert "\u2028" not in line and "\\u2028" in line  # escaped: no line separator smuggled into the log


async def test_wrong_password_fails_start_clearly(tmp_path: Path) -> None:
    async with RconTestServer(PASSWORD, MinecraftWorld()) as srv:
        adapter = MinecraftAdapter(_profile(srv.port, tmp_path / "latest.log"), NPCS, FAST, {VARIABLE: "wrong"})
        with pytest.raises(RconAuthError, match="rejected the password"):
            await adapter.start(asyncio.Queue[Event]().put)
        await adapter.stop()


async def test_unreachable_server_is_not_a_crash(tmp_path: Path) -> None:
    async with RconTestServer(PASSWORD, MinecraftWorld()) as srv:
        port = srv.port
    world = MinecraftWorld()
    adapter = MinecraftAdapter(_profile(port, tmp_path / "latest.log"), NPCS, FAST, {VARIABLE: PASSWORD})
    events: asyncio.Queue[Event] = asyncio.Queue()
    await adapter.start(events.put)  # the server is down: start still returns
    server = RconTestServer(PASSWORD, world)
    server.port = port
    async with server:
        async with asyncio.timeout(10):
            while not isinstance(await events.get(), Positions):
                pass
        assert len(world.tagged("npc_host.bram")) == 1
        await adapter.stop()


async def test_a_hub_outage_loses_the_lines_it_hit_not_chat_capture(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text("")
    said: asyncio.Queue[PlayerSaid] = asyncio.Queue()

    async def publish(event: Event) -> None:
        if isinstance(event, PlayerSaid):
            if event.text == "during the outage":
                raise BusUnavailableError("Redis at 127.0.0.1:6379 unreachable for 30s")
            await said.put(event)

    world = MinecraftWorld()
    async with RconTestServer(PASSWORD, world) as srv:
        adapter = MinecraftAdapter(_profile(srv.port, log), NPCS, FAST, {VARIABLE: PASSWORD})
        await adapter.start(publish)
        scene = Scene(adapter, srv, world, log, asyncio.Queue())
        scene.chat("Alice", "during the outage")
        scene.chat("Alice", "after it")
        async with asyncio.timeout(10):
            assert (await said.get()).text == "after it"
        await adapter.stop()
