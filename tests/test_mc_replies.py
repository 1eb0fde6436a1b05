"""Every command's reply is read: vanilla's error replies become typed errors, counted, logged once by kind; a line
the server did not show is not recorded as delivered; the start-up probe says which commands are missing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from host.config import MinecraftSettings, Settings
from host.events import Event, NpcSentence, NpcTurnCut, Positions
from host.profiles.schema import NpcProfile, PersonaSpec, RconSpec, ServerProfile, Vec3, WorldSpec
from integrations.minecraft.adapter import MinecraftAdapter
from integrations.minecraft.replies import COMMAND_ERRORS, CommandRejectedError, check_reply, error_reason
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer, unknown_command

PASSWORD = "replies-Secret-pw"
VARIABLE = "NPC_HOST_TEST_REPLIES_RCON"
FAST = Settings(
    minecraft=MinecraftSettings(positions_interval_s=0.02, log_poll_interval_s=0.02, rcon_backoff_max_s=0.05)
)
SECRET_WORDS = "meet me behind the mill at midnight"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (unknown_command('tellraw @a [{"text":"hi"}'), "unknown_command"),
        ("Incorrect argument for command" + "summon minecraft:villagr<--[HERE]", "incorrect_argument"),
        ("No entity was found", "no_entity"),
        ("No player was found", "no_player"),
        ("Expected whitespace to end one argument, but found trailing data" + "tp @s 1 2 3x<--[HERE]", "parse_error"),
        ('Invalid chat component: Unterminated string ...{"text<--[HERE]', "parse_error"),
        ("Unknown item 'minecraft:breadd'" + "give Alice minecraft:breadd<--[HERE]", "unknown_item"),
        ("That position is not loaded", "not_loaded"),
        ("Unable to summon entity", "summon_failed"),
        ("Can't give more than 6400 of [Bread]", "too_many_items"),
    ],
)
def test_vanilla_error_replies_are_recognised(reply: str, reason: str) -> None:
    assert error_reason(reply) == reason


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "Summoned new Villager",
        "Teleported Bram to 1.000000, 64.000000, 2.000000",
        "Alice has the following entity data: [1.0d, 64.0d, 2.0d]",
        "There are 1 of a max of 20 players online: Alice",
        "Gave 1 [Bread] to Alice",
        "Killed Bram",
    ],
)
def test_successful_replies_pass(reply: str) -> None:
    assert error_reason(reply) is None
    assert check_reply("any", reply) == reply


def test_a_rejection_is_an_error_with_a_code_a_metric_and_one_warning_without_the_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = COMMAND_ERRORS.labels(kind="tellraw", reason="unknown_command")
    before = counter._value.get()
    reply = unknown_command(f'tellraw @a [{{"text":"{SECRET_WORDS}"}}')
    with caplog.at_level(logging.WARNING), pytest.raises(CommandRejectedError) as raised:
        check_reply("tellraw", reply)
    assert raised.value.code == "mc_unknown_command"
    assert counter._value.get() == before + 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warnings == ["the server rejected a tellraw command (unknown_command)"]
    assert SECRET_WORDS not in caplog.text


def test_an_expected_error_is_the_answer() -> None:
    assert check_reply("kill", "No entity was found", expected=frozenset({"no_entity"})) == "No entity was found"


def _npc(npc_id: str, name: str, x: float) -> NpcProfile:
    world = WorldSpec(position=Vec3(x=x, y=64, z=0), hearing_range=8, speaking_range=16)
    return NpcProfile(id=npc_id, name=name, persona=PersonaSpec(description=name), world=world)


NPCS = [_npc("bram", "Bram", 0), _npc("ada", "Ada", 100)]


async def _run_adapter(
    world: MinecraftWorld, tmp_path: Path, events: asyncio.Queue[Event]
) -> tuple[RconTestServer, MinecraftAdapter]:
    srv = RconTestServer(PASSWORD, world)
    await srv.start()
    log_file = tmp_path / "latest.log"
    log_file.write_text("")
    rcon = RconSpec(host="127.0.0.1", port=srv.port, password_env=VARIABLE)
    profile = ServerProfile(name="village", rcon=rcon, log_path=str(log_file))
    adapter = MinecraftAdapter(profile, NPCS, FAST, {VARIABLE: PASSWORD})
    await adapter.start(events.put)
    return srv, adapter


def _sentence(index: int, text: str, turn: str = "t1") -> NpcSentence:
    return NpcSentence(server="village", npc="bram", player="Alice", turn_id=turn, index=index, text=text)


async def _next(events: asyncio.Queue[Event], kind: type[Event]) -> Event:
    async with asyncio.timeout(10):
        while not isinstance(event := await events.get(), kind):
            pass
    return event


async def test_a_rejected_line_is_cut_from_the_record_and_the_rest_of_the_turn_is_not_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = MinecraftWorld(players={"Alice": Player(3, 64, 0)})
    events: asyncio.Queue[Event] = asyncio.Queue()
    srv, adapter = await _run_adapter(world, tmp_path, events)
    try:
        await adapter.handle(_sentence(0, "Welcome to the inn."))
        world.rejected["tellraw"] = "Incorrect argument for command" + "tellraw @a[...] ...<--[HERE]"
        with caplog.at_level(logging.WARNING):
            await adapter.handle(_sentence(1, SECRET_WORDS))
        cut = await _next(events, NpcTurnCut)
        assert isinstance(cut, NpcTurnCut)
        assert (cut.turn_id, cut.heard, cut.sentences_heard) == ("t1", "Welcome to the inn.", 1)
        del world.rejected["tellraw"]
        tellraws = len([c for c in srv.commands if "tellraw" in c])
        await adapter.handle(_sentence(2, "And a third."))
        assert len([c for c in srv.commands if "tellraw" in c]) == tellraws  # the turn has a hole: not continued
        assert [seen for seen, _ in world.shown] == [["Alice"]]
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == ["the server rejected a tellraw command (incorrect_argument)"]
        assert SECRET_WORDS not in caplog.text
    finally:
        await adapter.stop()
        await srv.stop()


async def test_a_line_nobody_was_in_range_to_read_is_not_recorded_as_delivered(tmp_path: Path) -> None:
    world = MinecraftWorld(players={"Far_Fred": Player(400, 64, 0)})
    events: asyncio.Queue[Event] = asyncio.Queue()
    srv, adapter = await _run_adapter(world, tmp_path, events)
    try:
        await adapter.handle(_sentence(0, "Anyone there?"))
        cut = await _next(events, NpcTurnCut)
        assert isinstance(cut, NpcTurnCut)
        assert (cut.heard, cut.sentences_heard) == ("", 0)
        assert world.shown == []
    finally:
        await adapter.stop()
        await srv.stop()


async def test_start_probe_names_missing_commands_and_the_summon_count_is_honest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = MinecraftWorld(missing={"summon", "tellraw"})
    events: asyncio.Queue[Event] = asyncio.Queue()
    with caplog.at_level(logging.INFO):
        srv, adapter = await _run_adapter(world, tmp_path, events)
    try:
        await _next(events, Positions)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert "does not accept tellraw, summon over RCON" in errors[0]
        assert "NPC bodies cannot appear" in errors[0]
        assert "summoned 0 of 2 NPC bodies" in caplog.text
        assert "summoned 2 NPC bodies" not in caplog.text
        assert world.entities == []
    finally:
        await adapter.stop()
        await srv.stop()


async def test_a_complete_server_passes_the_probe_without_side_effects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = MinecraftWorld()
    events: asyncio.Queue[Event] = asyncio.Queue()
    with caplog.at_level(logging.INFO):
        srv, adapter = await _run_adapter(world, tmp_path, events)
    try:
        assert "server 'village' accepts execute, tellraw, summon, data over RCON" in caplog.text
        assert "summoned 2 NPC bodies" in caplog.text
        assert [e.tags[1] for e in world.entities] == ["npc_host.bram", "npc_host.ada"]  # the probes summoned nothing
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await adapter.stop()
        await srv.stop()
