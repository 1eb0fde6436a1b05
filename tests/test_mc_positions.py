"""Positions: parsing the server's replies, and polling them through the RCON double."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from host.bus.errors import BusUnavailableError
from host.events import EntityPosition, Positions
from integrations.minecraft.positions import (
    EntityDataError,
    PositionPoller,
    parse_dimension,
    parse_entity_data,
    parse_numbers,
    parse_player_list,
)
from integrations.minecraft.rcon import RconClient
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer

PASSWORD = "pw-positions"


@pytest.mark.parametrize(
    ("reply", "names"),
    [
        ("There are 0 of a max of 20 players online: ", []),
        ("There are 2 of a max of 20 players online: Alice, Bob_2", ["Alice", "Bob_2"]),
        ("There are 1/20 players online:Alice", ["Alice"]),
        ("There are 2 out of maximum 20 players online.\ndefault: Alice, Bob_2", ["Alice", "Bob_2"]),
        ("There are 2 out of maximum 20 players online.\nadmins: Alice\ndefault: Bob_2", ["Alice", "Bob_2"]),
        ("There are 1 of a max of 20 players online: [AFK]Alice, Carol", ["Carol"]),
    ],
)
def test_player_list(reply: str, names: list[str]) -> None:
    assert parse_player_list(reply) == names


def test_player_list_unexpected_reply_is_a_clear_error() -> None:
    with pytest.raises(EntityDataError, match="unexpected reply to 'list'"):
        parse_player_list("Unknown or incomplete command")


@pytest.mark.parametrize(
    ("reply", "count", "numbers"),
    [
        ("Alice has the following entity data: [1.5d, 64.0d, -3.2d]", 3, [1.5, 64.0, -3.2]),
        ("[Admin] Alice has the following entity data: [-0.0d, 70d, 1.0E-4d]", 3, [-0.0, 70.0, 0.0001]),
        ("Alice has the following entity data: [90.0f, -12.5f]", 2, [90.0, -12.5]),
        ("Bob_2 has the following entity data: [ 1.25 , 2 , 3.5D ]", 3, [1.25, 2.0, 3.5]),
    ],
)
def test_entity_numbers(reply: str, count: int, numbers: list[float]) -> None:
    value = parse_entity_data(reply)
    assert value is not None
    assert parse_numbers(value, count) == numbers


@pytest.mark.parametrize(
    ("value", "count"), [("[1.5d, 64.0d]", 3), ("1.5d, 2d, 3d", 3), ("[1.5d, NaNd, 3d]", 3), ("[a, b]", 2)]
)
def test_bad_numbers_are_errors(value: str, count: int) -> None:
    with pytest.raises(EntityDataError):
        parse_numbers(value, count)


def test_offline_or_renamed_player_is_none() -> None:
    assert parse_entity_data("No entity was found") is None


def test_dimension() -> None:
    value = parse_entity_data('Alice has the following entity data: "minecraft:the_nether"')
    assert value is not None
    assert parse_dimension(value) == "minecraft:the_nether"
    with pytest.raises(EntityDataError):
        parse_dimension('"not a dimension"')


def _world() -> MinecraftWorld:
    return MinecraftWorld(
        players={
            "Alice": Player(10.5, 64.0, -3.25, yaw=90.0),
            "Bob_2": Player(-100.0, 32.0, 7.0, yaw=-45.5, dimension="minecraft:the_nether"),
        }
    )


@pytest_asyncio.fixture(loop_scope="function")
async def rcon() -> AsyncIterator[tuple[RconTestServer, RconClient, MinecraftWorld]]:
    world = _world()
    async with (
        RconTestServer(PASSWORD, world) as srv,
        RconClient(srv.host, srv.port, SecretStr(PASSWORD), backoff_initial_s=0.01) as client,
    ):
        yield srv, client, world


async def test_poller_publishes_players_and_static_npcs(
    rcon: tuple[RconTestServer, RconClient, MinecraftWorld],
) -> None:
    srv, client, _world = rcon
    bram = EntityPosition(name="bram", kind="npc", x=12, y=64, z=-3)
    poller = PositionPoller("village", client, interval_s=0.01, detail_interval_s=60, npcs=[bram])
    published: list[Positions] = []

    async def publish(event: Positions) -> None:
        published.append(event)
        if len(published) == 2:
            raise StopAsyncIteration

    with pytest.raises(StopAsyncIteration):
        await poller.run(publish)
    assert published[0].server == "village"
    assert published[0].entities == [
        EntityPosition(name="Alice", x=10.5, y=64.0, z=-3.25, yaw=90.0),
        EntityPosition(name="Bob_2", x=-100.0, y=32.0, z=7.0, yaw=-45.5, dimension="minecraft:the_nether"),
        bram,
    ]
    assert published[1].entities == published[0].entities
    # First poll: positions, then facing and dimension for the new players; second poll: positions only.
    assert srv.commands == [
        "execute as @a run data get entity @s Pos",
        "execute as @a run data get entity @s Rotation",
        "execute as @a run data get entity @s Dimension",
        "execute as @a run data get entity @s Pos",
    ]
    assert srv.errors == []


async def test_twenty_players_in_one_command(rcon: tuple[RconTestServer, RconClient, MinecraftWorld]) -> None:
    srv, client, world = rcon
    world.players = {f"Player_{i:02d}": Player(i * 1.5, 64.0, -i) for i in range(20)}
    poller = PositionPoller("village", client)
    await poller.poll_once()
    srv.commands.clear()
    world.players["Player_07"].x = 99.25
    positions = await poller.poll_once()
    assert srv.commands == ["execute as @a run data get entity @s Pos"]
    by_name = {entity.name: entity for entity in positions.entities}
    assert len(by_name) == 20
    assert (by_name["Player_07"].x, by_name["Player_19"].z) == (99.25, -19.0)


async def test_team_decorated_names_are_matched_to_the_plain_name_once(
    rcon: tuple[RconTestServer, RconClient, MinecraftWorld],
) -> None:
    srv, client, world = rcon
    world.players["Alice"].team_prefix = "[Guard] "
    poller = PositionPoller("village", client)
    first = await poller.poll_once()
    second = await poller.poll_once()
    assert {entity.name for entity in first.entities} == {"Alice", "Bob_2"}
    assert second.entities == first.entities
    assert srv.commands.count("list") == 1


async def test_a_stale_speaker_position_is_read_again_in_one_round_trip(
    rcon: tuple[RconTestServer, RconClient, MinecraftWorld],
) -> None:
    srv, client, world = rcon
    poller = PositionPoller("village", client, stale_after_s=0.0)
    await poller.poll_once()
    world.players["Alice"].x = 1.5  # walked up to the NPC since the last poll
    assert poller.is_stale("Alice")
    srv.commands.clear()
    fresh = await poller.refresh("Alice")
    assert srv.commands == ["data get entity Alice Pos"]
    assert fresh is not None
    assert (fresh.x, fresh.yaw, fresh.dimension) == (1.5, 90.0, "minecraft:overworld")
    assert await poller.refresh("Nobody_Here") is None


async def test_poller_survives_a_server_restart(rcon: tuple[RconTestServer, RconClient, MinecraftWorld]) -> None:
    srv, client, _world = rcon
    poller = PositionPoller("village", client)
    before = await poller.poll_once()
    await srv.restart()
    after = await poller.poll_once()
    assert after.entities == before.entities
    assert client.connections == 2


async def test_a_down_server_is_one_warning_not_one_per_poll(
    rcon: tuple[RconTestServer, RconClient, MinecraftWorld], caplog: pytest.LogCaptureFixture
) -> None:
    srv, _client, _world = rcon
    client = RconClient(srv.host, srv.port, SecretStr(PASSWORD), backoff_initial_s=0.05, backoff_max_s=0.2)
    poller = PositionPoller("village", client, interval_s=0.01)
    published: list[Positions] = []
    back = asyncio.Event()

    async def publish(event: Positions) -> None:
        published.append(event)
        back.set()

    await srv.stop()
    with caplog.at_level(logging.INFO, logger="integrations.minecraft.positions"):
        task = asyncio.create_task(poller.run(publish))
        await asyncio.sleep(1.0)  # 100 poll intervals while the server is down
        assert published == []
        await srv.start()
        async with asyncio.timeout(10):
            await back.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await client.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "integrations.minecraft.positions"]
    assert len([m for m in messages if "paused" in m]) == 1
    assert messages[-1] == "positions on village resumed"
    assert len(messages) == 2


async def test_poller_keeps_polling_through_a_hub_outage(
    rcon: tuple[RconTestServer, RconClient, MinecraftWorld],
) -> None:
    _srv, client, _world = rcon
    poller = PositionPoller("village", client, interval_s=0.01)
    attempts = 0

    async def publish(_event: Positions) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise BusUnavailableError("Redis at 127.0.0.1:6379 unreachable for 30s")
        raise StopAsyncIteration

    with pytest.raises(StopAsyncIteration):
        await poller.run(publish)
    assert attempts == 2
