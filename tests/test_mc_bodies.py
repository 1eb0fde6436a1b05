"""NPC bodies against the RCON double, whose `MinecraftWorld` handler keeps the tagged entities."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from host.events import Position
from host.profiles.schema import BodyKind, NpcProfile, PersonaSpec, Vec3, WorldSpec
from integrations.minecraft.bodies import NpcBodies
from integrations.minecraft.commands import CommandArgumentError
from integrations.minecraft.rcon import RconClient
from tests.doubles.rcon_server import MinecraftWorld, RconTestServer

PASSWORD = "pw-bodies"


def _npc(npc_id: str, name: str, body: BodyKind = "villager", yaw: float = 0.0) -> NpcProfile:
    return NpcProfile(
        id=npc_id,
        name=name,
        persona=PersonaSpec(description=f"{name} of the village"),
        world=WorldSpec(position=Vec3(x=10.5, y=64, z=-3), yaw=yaw, body=body),
    )


NPCS = [_npc("bram", "Bram", yaw=90), _npc("ada", "Ada the Scribe", "armor_stand"), _npc("ghost", "Ghost", "none")]


@pytest_asyncio.fixture(loop_scope="function")
async def world() -> AsyncIterator[tuple[MinecraftWorld, RconTestServer, RconClient]]:
    state = MinecraftWorld()
    async with (
        RconTestServer(PASSWORD, state) as srv,
        RconClient(srv.host, srv.port, SecretStr(PASSWORD), backoff_initial_s=0.01) as client,
    ):
        yield state, srv, client


async def test_bodies_are_summoned_once_with_the_right_tags(
    world: tuple[MinecraftWorld, RconTestServer, RconClient],
) -> None:
    state, srv, client = world
    await NpcBodies(client, NPCS).start()
    summons = [c for c in srv.commands if " summon " in c]
    assert len(summons) == 2
    assert [e.kind for e in state.entities] == ["minecraft:villager", "minecraft:armor_stand"]
    assert [e.tags for e in state.entities] == [
        ["npc_host", "npc_host.bram"],
        ["npc_host", "npc_host.ada"],
    ]
    bram = state.entities[0]
    assert (bram.x, bram.y, bram.z, bram.dimension) == ("10.500", "64.000", "-3.000", "minecraft:overworld")
    for flag in ("NoAI:1b", "Invulnerable:1b", "PersistenceRequired:1b", "Silent:1b", "CustomNameVisible:1b"):
        assert flag in bram.nbt
    assert "Rotation:[90.000f,0.0f]" in bram.nbt
    assert """CustomName:'{"text":"Bram"}'""" in bram.nbt
    assert srv.commands.index("kill @e[tag=npc_host.bram]") < srv.commands.index(summons[0])
    assert not state.tagged("npc_host.ghost")


async def test_host_restart_does_not_duplicate(world: tuple[MinecraftWorld, RconTestServer, RconClient]) -> None:
    state, _srv, client = world
    await NpcBodies(client, NPCS).start()
    await NpcBodies(client, NPCS).start()  # a second host process, same world
    assert len(state.tagged("npc_host.bram")) == 1
    assert len(state.tagged("npc_host.ada")) == 1


async def test_server_restart_resummons_before_the_next_command(
    world: tuple[MinecraftWorld, RconTestServer, RconClient],
) -> None:
    state, srv, client = world
    bodies = NpcBodies(client, NPCS)
    await bodies.start()
    await srv.restart()
    state.entities.clear()  # a world reset: the bodies are gone
    await bodies.face("bram", Position(x=12, y=64, z=-3))
    assert len(state.tagged("npc_host.bram")) == 1
    assert len(state.tagged("npc_host.ada")) == 1
    assert (
        srv.commands[-1] == "execute as @e[tag=npc_host.bram,limit=1] at @s run tp @s ~ ~ ~ facing 12.000 65.620 -3.000"
    )


async def test_stop_removes_the_bodies(world: tuple[MinecraftWorld, RconTestServer, RconClient]) -> None:
    state, srv, client = world
    bodies = NpcBodies(client, NPCS)
    await bodies.start()
    await bodies.stop()
    assert state.entities == []
    await srv.restart()
    await client.command("list")
    assert state.entities == []  # no longer re-created after a restart


async def test_moved_body_comes_back_where_it_was_moved(
    world: tuple[MinecraftWorld, RconTestServer, RconClient],
) -> None:
    state, srv, client = world
    bodies = NpcBodies(client, NPCS)
    await bodies.start()
    await bodies.move("bram", Position(x=50, y=70, z=50))
    await srv.restart()
    state.entities.clear()
    await client.command("list")
    assert [(e.x, e.y, e.z) for e in state.tagged("npc_host.bram")] == [("50.000", "70.000", "50.000")]


def test_an_npc_outside_the_world_is_refused_up_front() -> None:
    far = NpcProfile(
        id="far",
        name="Far",
        persona=PersonaSpec(description="far away"),
        world=WorldSpec(position=Vec3(x=float("inf"), y=64, z=0)),
    )
    with pytest.raises(CommandArgumentError, match="NPC 'far' cannot have a body: coordinate out of the world"):
        NpcBodies(RconClient("127.0.0.1", 1, SecretStr(PASSWORD)), [far])
