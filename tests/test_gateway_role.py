"""The gateway role in-process (in-process hub, SQLite, the RCON double per server): several servers side by side,
one that cannot run, one that is down at start, profile reloads reaching the game, bodies removed at stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from host.bus.streams import StreamKind, stream_for, stream_name
from host.config import MinecraftSettings, Settings
from host.events import NpcSentence
from host.profiles.schema import RconSpec, ServerProfile
from host.roles.gateway import GatewayRole, warn_shared_targets
from host.roles.services import HostServices
from tests.bus_support import poll_until, wait_until
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer
from tests.host_process import closed_port

PASSWORD = "gateway-Secret-pw"
WAIT_S = 60.0  # a bound for a loaded machine, never a speed check


def _write_server(root: Path, name: str, port: int | None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "latest.log").write_text("")
    rcon = f'\n[rcon]\nport = {port}\npassword_env = "NPC_HOST_TEST_RCON_{name.upper()}"\n' if port else ""
    (folder / "server.toml").write_text(f'name = "{name}"\nlog_path = "latest.log"\noperators = ["Op_Olga"]\n{rcon}')
    _write_npc(folder, 0.5)
    return folder


def _write_npc(folder: Path, x: float) -> None:
    (folder / "bram.toml").write_text(
        'id = "bram"\nname = "Bram"\n\n[persona]\ndescription = "An innkeeper."\n\n'
        f"[world]\nposition = {{ x = {x}, y = 64.0, z = 0.5 }}\nspeaking_range = 20.0\n"
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        profiles_dir=tmp_path / "profiles",
        data_dir=tmp_path / "data",
        transcripts_dir=tmp_path / "transcripts",
        redis_url=None,
        minecraft=MinecraftSettings(positions_interval_s=0.05, log_poll_interval_s=0.02, rcon_backoff_max_s=0.1),
    )


@asynccontextmanager
async def running_gateway(settings: Settings, environ: Mapping[str, str]) -> AsyncIterator[HostServices]:
    services = await HostServices.open(settings, watch_profiles=False)
    stop = asyncio.Event()
    role = GatewayRole(services, environ=environ)
    task = asyncio.create_task(role.run(stop))
    try:
        yield services
    finally:
        stop.set()
        try:
            async with asyncio.timeout(WAIT_S):
                await task
        finally:
            await services.aclose()


async def _gateway_consuming(services: HostServices, server: str) -> bool:
    """Whether the gateway joined the group on the server's control stream: it does so once every adapter started
    (the log is followed from then on)."""
    info = await services.bus.stream_info(stream_name(server, StreamKind.CONTROL))
    return any(group.name == "gateway" and group.consumers for group in info.groups)


async def _commands(server: RconTestServer, pattern: str, count: int = 1) -> list[str]:
    async with asyncio.timeout(WAIT_S):
        return await server.wait_for_commands(pattern, count)


async def test_a_server_that_cannot_run_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    north_world = MinecraftWorld(players={"Alice": Player(1.5, 64, 0.5)})
    south_world = MinecraftWorld()
    async with RconTestServer(PASSWORD, north_world) as north, RconTestServer(PASSWORD, south_world) as south:
        root = tmp_path / "profiles"
        _write_server(root, "north", north.port)
        _write_server(root, "south", south.port)
        _write_server(root, "west", None)  # no [rcon]: cannot be driven
        wrong = "not-the-" + PASSWORD
        environ = {"NPC_HOST_TEST_RCON_NORTH": PASSWORD, "NPC_HOST_TEST_RCON_SOUTH": wrong}
        caplog.set_level(logging.INFO)
        async with running_gateway(_settings(tmp_path), environ) as services:
            await _commands(north, r"summon minecraft:villager")
            assert len(north_world.tagged("npc_host.bram")) == 1

            sentence = NpcSentence(server="north", npc="bram", player="Alice", turn_id="t1", index=0, text="Welcome!")
            await services.bus.publish(stream_for(sentence), sentence)
            [tellraw] = await _commands(north, r"tellraw @a\[")
            assert '"Welcome!"' in tellraw and "distance=..20" in tellraw

            assert "gateway drives 'north'\n" in caplog.text  # and neither south nor west
            errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
            assert any("'south'" in error and "rejected the password" in error for error in errors)
            assert any("'west'" in error and "no [rcon] section" in error for error in errors)
        assert await _commands(north, r"^kill @e\[tag=npc_host\.bram\]$", 2)  # the one before summon, and at stop
        assert north_world.tagged("npc_host.bram") == []
    assert south.logins == 0 and south_world.entities == []
    assert wrong not in caplog.text and PASSWORD not in caplog.text


async def test_a_server_down_at_start_gets_its_bodies_when_it_comes_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    _write_server(tmp_path / "profiles", "north", port)
    world = MinecraftWorld()
    caplog.set_level(logging.WARNING)
    async with running_gateway(_settings(tmp_path), {"NPC_HOST_TEST_RCON_NORTH": PASSWORD}):
        await wait_until(lambda: "summoned when it answers" in caplog.text, "the gateway to meet the closed port")
        late = RconTestServer(PASSWORD, world)
        late.port = port
        async with late:
            await _commands(late, r"summon minecraft:villager")
            assert len(world.tagged("npc_host.bram")) == 1
            assert float(world.tagged("npc_host.bram")[0].x) == 0.5


async def test_npc_reload_from_an_operator_moves_the_body_to_the_edited_position(tmp_path: Path) -> None:
    world = MinecraftWorld(players={"Op_Olga": Player(0, 64, 0)})
    async with RconTestServer(PASSWORD, world) as server:
        folder = _write_server(tmp_path / "profiles", "north", server.port)
        async with running_gateway(_settings(tmp_path), {"NPC_HOST_TEST_RCON_NORTH": PASSWORD}) as services:
            await _commands(server, r"summon minecraft:villager 0\.50* ")
            await poll_until(lambda: _gateway_consuming(services, "north"), "the gateway to consume north's streams")
            _write_npc(folder, 30.5)
            with (folder / "latest.log").open("a", encoding="utf-8") as log:
                log.write("[12:00:01] [Server thread/INFO]: <Op_Olga> !npc reload\n")
            await _commands(server, r"summon minecraft:villager 30\.50* ")
            assert [float(entity.x) for entity in world.tagged("npc_host.bram")] == [30.5]
            assert any("reloading profiles" in command for command in server.commands)


def test_two_profiles_driving_one_server_are_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The README's real-server steps used to leave the example folder next to the copy: both drove the same game."""
    log = tmp_path / "logs" / "latest.log"
    servers = [
        ServerProfile(name="example", rcon=RconSpec(host="localhost", password_env="A"), log_path=str(log)),
        ServerProfile(name="mine", rcon=RconSpec(host="127.0.0.1", password_env="B"), log_path=str(log)),
        ServerProfile(name="other", rcon=RconSpec(host="10.0.0.5", password_env="C")),
    ]
    with caplog.at_level(logging.WARNING):
        warnings = warn_shared_targets(servers)
    assert len(warnings) == 2
    assert "servers 'example', 'mine' share the RCON address 127.0.0.1:25575" in warnings[0]
    assert f"servers 'example', 'mine' share the log file {log}" in warnings[1]
    assert [r.getMessage() for r in caplog.records] == warnings
    assert warn_shared_targets(servers[1:]) == []
