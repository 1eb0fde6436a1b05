"""Positions: parsing the server's replies, and polling them through the RCON double."""

from __future__ import annotations

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
from tests.doubles.rcon_server import RconTestServer

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


WORLD = {
    "Alice": ("[10.5d, 64.0d, -3.25d]", "[90.0f, 0.0f]", '"minecraft:overworld"'),
    "Bob_2": ("[-100.0d, 32.0d, 7.0d]", "[-45.5f, 10.0f]", '"minecraft:the_nether"'),
}


def _game(command: str) -> str:
    if command == "list":
        return "There are 3 of a max of 20 players online: Alice, Bob_2, Gone_Guy"
    _, _, _, name, path = command.split()
    if name not in WORLD:
        return "No entity was found"
    pos, rotation, dimension = WORLD[name]
    value = {"Pos": pos, "Rotation": rotation, "Dimension": dimension}[path]
    return f"{name} has the following entity data: {value}"


@pytest_asyncio.fixture(loop_scope="function")
async def rcon() -> AsyncIterator[tuple[RconTestServer, RconClient]]:
    async with RconTestServer(PASSWORD, _game) as srv, RconClient(srv.host, srv.port, SecretStr(PASSWORD)) as client:
        yield srv, client


async def test_poller_publishes_players_and_static_npcs(rcon: tuple[RconTestServer, RconClient]) -> None:
    srv, client = rcon
    bram = EntityPosition(name="bram", kind="npc", x=12, y=64, z=-3)
    poller = PositionPoller("village", client, interval_s=0.01, npcs=[bram])
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
    assert srv.commands[:4] == [
        "list",
        "data get entity Alice Pos",
        "data get entity Alice Rotation",
        "data get entity Alice Dimension",
    ]
    assert "data get entity Gone_Guy Pos" in srv.commands
    assert srv.errors == []


async def test_poller_survives_a_server_restart(rcon: tuple[RconTestServer, RconClient]) -> None:
    srv, client = rcon
    poller = PositionPoller("village", client)
    before = await poller.poll_once()
    await srv.restart()
    after = await poller.poll_once()
    assert after.entities == before.entities
    assert client.connections == 2


async def test_poller_keeps_polling_through_a_hub_outage(rcon: tuple[RconTestServer, RconClient]) -> None:
    _srv, client = rcon
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


async def test_a_failing_poll_is_logged_once_a_minute_not_every_round(
    rcon: tuple[RconTestServer, RconClient], caplog: pytest.LogCaptureFixture
) -> None:
    _srv, client = rcon
    poller = PositionPoller("village", client, interval_s=0.001)
    attempts = 0

    async def publish(_event: Positions) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 50:
            raise BusUnavailableError("Redis at 127.0.0.1:6379 unreachable for 30s")
        raise StopAsyncIteration

    with pytest.raises(StopAsyncIteration):
        await poller.run(publish)
    warnings = [r for r in caplog.records if "not published" in r.getMessage()]
    assert attempts == 50 and len(warnings) == 1
