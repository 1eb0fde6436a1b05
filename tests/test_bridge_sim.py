"""`npc-host bridge-sim` end to end: two simulated players at different distances, one asking a question; the NPC's
answer reaches both with the right level and side."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import typer

from host.cli.bridge_cmd import parse_player
from host.demo_assets import load_manifest
from host.events import PlayerUtterance
from host.speech.audio import PIPER_RATE, Int16Array, read_wav
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.world import SpatialWorld
from tests.bridge_support import SERVER, TOKEN, at, tone


def rms(samples: Int16Array) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


async def bridge_sim(url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "host",
        "bridge-sim",
        "--url",
        url,
        "--server",
        SERVER,
        *args,
        env={**os.environ, "NPC_HOST_BRIDGE_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_two_players_hear_the_answer_at_their_distance(tmp_path: Path) -> None:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    asked: list[PlayerUtterance] = []
    answer = tone(1.0, PIPER_RATE)

    async def answer_the_question(utterance: PlayerUtterance) -> None:
        asked.append(utterance)
        server.play("bram", answer, PIPER_RATE)

    server = BridgeServer(world, server=SERVER, token=TOKEN, on_utterance=answer_the_question)
    await server.start("127.0.0.1", 0)
    question = load_manifest().get("bram_room.wav").path
    try:
        alice, bob = await asyncio.gather(
            # 4 blocks east of Bram facing south: he is on her right. She asks, then listens 3 s.
            bridge_sim(server.url, "--player", "Alice@4,64,0", "--say", str(question), "--out",
                       str(tmp_path / "alice.wav"), "--listen-seconds", "3"),
            # 12 blocks west of Bram facing south: outside his hearing range, inside his speaking range, on the left.
            bridge_sim(server.url, "--player", "Bob@-12,64,0", "--out", str(tmp_path / "bob.wav"),
                       "--listen-seconds", "7"),
        )  # fmt: skip
    finally:
        await server.close()
    assert alice[0] == 0 and bob[0] == 0, (alice, bob)
    assert [u.player for u in asked] == ["Alice"]
    assert "heard bram" in alice[1] and "heard bram" in bob[1]
    heard_alice, heard_bob = read_wav(tmp_path / "alice.wav"), read_wav(tmp_path / "bob.wav")
    assert heard_alice.rate == 48_000 and heard_alice.channels == 2
    a, b = heard_alice.samples, heard_bob.samples
    assert rms(a[:, 1]) > 100 * max(rms(a[:, 0]), 1.0)  # right ear
    assert rms(b[:, 0]) > 100 * max(rms(b[:, 1]), 1.0)  # left ear
    # Linear fade over 16 blocks: 0.75 at 4 blocks, 0.25 at 12; silence before the answer dilutes both equally.
    loud_a, loud_b = a[np.abs(a[:, 1]) > 0, 1], b[np.abs(b[:, 0]) > 0, 0]
    assert rms(loud_a) / rms(loud_b) == pytest.approx(3.0, rel=0.05)


async def test_bridge_sim_reports_a_refused_token(tmp_path: Path) -> None:
    world = SpatialWorld()
    server = BridgeServer(world, server=SERVER, token="another-bridge-token", on_utterance=lambda _: asyncio.sleep(0))
    await server.start("127.0.0.1", 0)
    try:
        code, _, err = await bridge_sim(server.url, "--player", "Alice@0,64,0", "--out", str(tmp_path / "a.wav"))
    finally:
        await server.close()
    assert code == 1 and "4001" in err and TOKEN not in err


@pytest.mark.parametrize("spec", ["Alice@1,2", "Alice", "@1,2,3", "Alice@1,x,3", "Alice@1.2.3,4,5"])
def test_a_bad_player_spec_is_refused_with_the_expected_form(spec: str) -> None:
    with pytest.raises(typer.BadParameter, match=r"NAME@X,Y,Z|not a number"):
        parse_player(spec, 0.0, "minecraft:overworld")


def test_a_player_spec_gives_name_and_position() -> None:
    assert parse_player("Old Birch@-3.5,70,12", 90.0, "minecraft:the_nether") == (
        "Old Birch",
        at(-3.5, 12, yaw=90.0, dimension="minecraft:the_nether").model_copy(update={"y": 70.0}),
    )
