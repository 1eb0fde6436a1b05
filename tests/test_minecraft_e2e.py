"""Issue 5's "Done when", through real processes and sockets: `python -m host run` (every role, in-process hub,
SQLite) brings the example village to life over chat. The RCON double plays the Minecraft server (Alice stands next
to Bram, Steve by Hilde at the gate, Bob far away, Alex is an operator), a log file the test appends to plays its
log, and the Ollama wire double plays the model."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from tests.bus_support import wait_until
from tests.doubles.ollama_server import OllamaWireServer
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer
from tests.host_process import HostProcess, host_env

PASSWORD = "e2e-Village-Secret"
PASSWORD_ENV = "NPC_HOST_RCON_PASSWORD_EXAMPLE"  # named by npc_profiles/example/server.toml
WAIT_S = 90.0  # a bound for a loaded machine (process start, migrations), never a speed check
NPC_IDS = ("birch", "bram", "hilde")
FIRST_REPLY = "Two rooms are free upstairs for three emeralds a night."
SECOND_REPLY = "Here is your key, traveller."
GIVE = " [give bread]"  # the example profile lets Bram give bread, one loaf a guest a day
HILDE_REPLY = "The gate shuts at sunset."
BRAM_AT, HILDE_AT = (4.5, 64.0, -3.5), (-6.5, 64.0, 5.5)  # from their profiles
TELLRAW_NEARBY = re.compile(
    r"^execute in minecraft:overworld run tellraw "
    r"@a\[x=(?P<x>[-\d.]+),y=(?P<y>[-\d.]+),z=(?P<z>[-\d.]+),distance=\.\.(?P<range>[\d.]+)\] (?P<json>\[.*\])$"
)
FACE_ALICE = re.compile(
    r"^execute as @e\[tag=npc_host\.bram,limit=1\] at @s run tp @s ~ ~ ~ facing (?P<x>\S+) (?P<y>\S+) (?P<z>\S+)$"
)


@dataclass
class Village:
    rcon: RconTestServer
    world: MinecraftWorld
    llm: OllamaWireServer
    host: HostProcess
    server_log: Path
    transcripts: Path

    def chat(self, player: str, text: str) -> None:
        with self.server_log.open("a", encoding="utf-8") as log:
            log.write(f"[12:00:01] [Server thread/INFO]: <{player}> {text}\n")

    async def commands(self, pattern: str, count: int = 1) -> list[str]:
        try:
            async with asyncio.timeout(WAIT_S):
                return await self.rcon.wait_for_commands(pattern, count)
        except TimeoutError:
            said = self.host.output()[-4000:]
            raise AssertionError(f"no {count} command(s) matching {pattern!r}; the host said:\n{said}") from None

    async def transcript_has(self, fragment: str) -> None:
        def written() -> bool:
            return any(fragment in path.read_text("utf-8") for path in self.transcripts.rglob("*.log"))

        await wait_until(written, f"{fragment} in the transcript")  # another process writes it: poll the file

    async def chat_seen(self, count: int) -> list[NearbyChat]:
        """Every chat line sent to the players near a point, once there are `count`."""
        return [_nearby_chat(command) for command in await self.commands(TELLRAW_NEARBY.pattern, count)]


@dataclass(frozen=True)
class NearbyChat:
    """One `tellraw` to the players within `radius` of `at`: a gold, hover-labelled `[NPC] <speaker>: text`."""

    at: tuple[float, float, float]
    radius: float
    speaker: str
    text: str


def _nearby_chat(command: str) -> NearbyChat:
    match = TELLRAW_NEARBY.match(command)
    assert match is not None, command
    head, prefix, *parts = json.loads(match["json"])
    assert head["color"] == "gold" and "not a player" in head["hoverEvent"]["contents"]  # no player can pass as it
    return NearbyChat(
        at=(float(match["x"]), float(match["y"]), float(match["z"])),
        radius=float(match["range"]),
        speaker=prefix["text"],
        text="".join(part["text"] for part in parts),
    )


def _profiles(tmp_path: Path, rcon_port: int, server_log: Path) -> None:
    """`npc_profiles/example`, where `host_env` looks for profiles, pointed at the doubles."""
    folder = tmp_path / "profiles" / "example"
    shutil.copytree(Path(__file__).resolve().parent.parent / "npc_profiles" / "example", folder)
    server_toml = folder / "server.toml"
    text = server_toml.read_text("utf-8")
    text = re.sub(r"(?m)^port = .*$", f"port = {rcon_port}", text)
    text = re.sub(r'(?m)^log_path = ".*"$', f"log_path = {json.dumps(str(server_log))}", text)
    server_toml.write_text(text, "utf-8")


def _host_settings(ollama_url: str) -> dict[str, str]:
    return {
        "NPC_HOST_LLM__BACKEND": "ollama",
        "NPC_HOST_LLM__OLLAMA_URL": ollama_url,
        "NPC_HOST_LLM__OLLAMA_MODEL": "double",
        "NPC_HOST_MINECRAFT__POSITIONS_INTERVAL_S": "0.1",
        "NPC_HOST_MINECRAFT__LOG_POLL_INTERVAL_S": "0.05",
        PASSWORD_ENV: PASSWORD,
    }


@pytest_asyncio.fixture(loop_scope="function")
async def village(tmp_path: Path) -> AsyncIterator[Village]:
    world = MinecraftWorld(
        players={
            "Alice": Player(5.5, 64.0, -2.5, yaw=0.0),  # a block from Bram (4.5 64 -3.5)
            "Alex": Player(6.5, 64.0, -1.5),
            "Steve": Player(-7.5, 64.0, 4.5),  # at the gate with Hilde, out of Old Birch's hearing
            "Bob": Player(300.0, 64.0, 300.0),
        }
    )
    server_log = tmp_path / "minecraft" / "latest.log"
    server_log.parent.mkdir()
    server_log.write_text('[11:59:00] [Server thread/INFO]: Done (3.2s)! For help, type "help"\n', "utf-8")
    async with (
        RconTestServer(PASSWORD, world) as rcon,
        OllamaWireServer([FIRST_REPLY + GIVE, HILDE_REPLY, SECOND_REPLY + GIVE]) as llm,
    ):
        _profiles(tmp_path, rcon.port, server_log)
        host = HostProcess.start(["run"], host_env(tmp_path, **_host_settings(llm.url)), tmp_path)
        try:
            yield Village(rcon, world, llm, host, server_log, tmp_path / "transcripts")
        finally:
            host.stop_now()


async def test_npc_host_run_brings_the_example_village_to_life(village: Village) -> None:
    # The bodies: one each, with both tags.
    await village.commands(r"run summon minecraft:", count=len(NPC_IDS))
    for npc_id in NPC_IDS:
        [body] = village.world.tagged(f"npc_host.{npc_id}")
        assert body.tags == ["npc_host", f"npc_host.{npc_id}"]
    assert village.world.tagged("npc_host.birch")[0].kind == "minecraft:armor_stand"
    assert village.world.tagged("npc_host.bram")[0].kind == "minecraft:villager"
    await village.host.wait_output("gateway drives 'example'")  # the log is followed from here on
    # A first run's start-up lines, in the order a server owner reads them.
    output = village.host.output()
    probe, summoned = "'example' accepts execute, tellraw, summon, data over RCON", "summoned 3 NPC bodies"
    assert output.index(probe) < output.index(summoned) < output.index("gateway drives 'example'")
    # A second poll round has begun, so the first one's positions are known to the host.
    await village.commands(r"^execute as @a run data get entity @s Pos$", count=2)

    village.chat("Alice", "Bram, any rooms free?")
    await village.commands(FACE_ALICE.pattern)
    assert await village.chat_seen(1) == [NearbyChat(BRAM_AT, 20.0, "[NPC] Bram: ", FIRST_REPLY)]  # his speaking range
    [face] = [command for command in village.rcon.commands if FACE_ALICE.match(command)]
    facing = FACE_ALICE.match(face)
    assert facing is not None
    assert (float(facing["x"]), float(facing["y"]), float(facing["z"])) == (5.5, 65.62, -2.5)  # Alice's eyes

    village.chat("Bob", "Bram, are you there? I need a room.")  # 400 blocks away: nobody hears him
    village.chat("Alex", "!npc pause bram")
    await village.transcript_has("[control=pause]")
    village.chat("Alice", "Bram, what is for dinner?")
    # Lines are handled in order, so once Hilde answered Steve the two lines before his were handled, unanswered.
    # (Waiting for her before the resume matters: control overtakes chat, so a resume sent now could come first.)
    village.chat("Steve", "Hilde, is the gate open?")
    assert (await village.chat_seen(2))[1] == NearbyChat(HILDE_AT, 24.0, "[NPC] Hilde: ", HILDE_REPLY)
    village.chat("Alex", "!npc resume bram")
    await village.transcript_has("[control=resume]")
    village.chat("Alice", "Bram, one room then, please.")
    assert (await village.chat_seen(3))[2] == NearbyChat(BRAM_AT, 20.0, "[NPC] Bram: ", SECOND_REPLY)

    prompts = [json.dumps(body["messages"]) for body in village.llm.chat_bodies]
    assert len(prompts) == 3
    assert "any rooms free" in prompts[0] and "gate open" in prompts[1] and "one room then" in prompts[2]
    # The prompts offer what the example profiles allow: bread from Bram, Hilde's rounds.
    assert "[give <item>] to hand over one of: bread" in prompts[0]
    assert "[walk <place>] to walk to one of: gate, inn, well" in prompts[1]
    # Bram acted on his first tag (never shown in chat, above) and refused the second: one loaf a guest a day.
    await village.transcript_has("npc bram > Alice [action=give outcome=performed")
    await village.transcript_has("npc bram > Alice [action=give outcome=refused reason=player_limit")
    assert village.world.given == [("Alice", "minecraft:bread", 1)]
    assert not any("for dinner" in prompt or "are you there" in prompt for prompt in prompts)
    # The operator's answers went to him alone.
    assert any(command.startswith("tellraw Alex ") and "paused" in command for command in village.rcon.commands)

    village.host.signal(signal.SIGTERM)
    assert await village.host.wait_exit() == 0, village.host.output()
    for npc_id in NPC_IDS:
        assert village.world.tagged(f"npc_host.{npc_id}") == []
        kills = [command for command in village.rcon.commands if command == f"kill @e[tag=npc_host.{npc_id}]"]
        assert len(kills) == 2  # the one before the summon, and the one at stop
    assert PASSWORD not in village.host.output()
