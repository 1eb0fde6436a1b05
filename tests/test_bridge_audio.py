"""NPC voices out of the bridge: relative gain and pan side per listener (mixed), mono sources with their position
(source), nothing for listeners out of range, and stops that cut the stream."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from host.events import PlayerUtterance
from host.speech.audio import PIPER_RATE, Int16Array
from proximity_audio.bridge_client import BridgeClient, Received
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.protocol import ErrorMessage, FrameKind, NpcStreamEnd, NpcStreamStart, OutputMode
from proximity_audio.simulated_player import SimulationResult, simulate_player
from proximity_audio.world import SpatialWorld
from tests.bridge_support import FAST, SERVER, TOKEN, at, client, eventually, running_bridge, tone


def rms(samples: Int16Array) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


@pytest.fixture
def world() -> SpatialWorld:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    return world


def ends(received: Received) -> list[NpcStreamEnd]:
    return [m for m in received.messages if isinstance(m, NpcStreamEnd)]


async def test_two_listeners_hear_the_right_level_and_side_and_a_far_one_nothing(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(4, 0, yaw=0))  # facing south, Bram 4 blocks west: on her right
        await plugin.join(1, "Bob", at(-8, 0, yaw=0))  # facing south, Bram 8 blocks east: on his left
        await plugin.join(2, "Carol", at(0, 30))  # beyond the 16-block speaking range
        await eventually(lambda: world.player("Carol") is not None)
        server.play("bram", tone(0.6, PIPER_RATE), PIPER_RATE)
        received = await plugin.collect_until(lambda r: bool(ends(r)), within_s=10)
    alice, bob = received.audio(FrameKind.MIXED, 0), received.audio(FrameKind.MIXED, 1)
    assert len(alice) == len(bob) == 30 * 960  # 0.6 s in 20 ms frames
    assert rms(alice[:, 1]) > 1000 and rms(alice[:, 0]) < 10  # right ear only
    assert rms(bob[:, 0]) > 1000 and rms(bob[:, 1]) < 10  # left ear only
    assert rms(alice[:, 1]) / rms(bob[:, 0]) == pytest.approx(0.75 / 0.5, rel=0.03)  # linear fade over 16 blocks
    assert len(received.audio(FrameKind.MIXED, 2)) == 0
    [start] = [m for m in received.messages if isinstance(m, NpcStreamStart)]
    assert (start.npc, start.npc_index, start.speaking_range) == ("bram", 0, 16.0)
    assert [(e.npc, e.reason) for e in ends(received)] == [("bram", "finished")]


async def test_source_mode_sends_one_mono_stream_per_npc_to_plugins_with_a_listener_in_range(
    world: SpatialWorld,
) -> None:
    async with (
        running_bridge(world) as (server, _),
        client(server, mode="source") as near,
        client(server, mode="source") as far,
    ):
        await near.connect()
        await far.connect()
        await near.join(0, "Alice", at(2, 0))
        await far.join(0, "Dave", at(50, 0))
        await eventually(lambda: world.player("Dave") is not None and world.player("Alice") is not None)
        voice = tone(0.4, PIPER_RATE)
        server.play("bram", voice, PIPER_RATE)
        got_near, got_far = await asyncio.gather(
            near.collect_until(lambda r: bool(ends(r)), within_s=10),
            far.collect_until(lambda r: bool(ends(r)), within_s=10),
        )
    mono = got_near.audio(FrameKind.NPC_SOURCE, 0)
    assert len(mono) == 20 * 960
    assert rms(mono) == pytest.approx(rms(voice), rel=0.05)  # unattenuated: the plugin places it itself
    assert [f.sequence for _, f in got_near.frames] == list(range(20))
    assert got_far.frames == [] and len(ends(got_far)) == 1


async def test_stop_cuts_the_stream_within_a_frame(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await eventually(lambda: world.player("Alice") is not None)
        server.play("bram", tone(3.0, PIPER_RATE), PIPER_RATE)
        before = await plugin.collect_until(lambda r: len(r.frames) >= 10, within_s=10)
        assert server.stop("bram") is True
        assert server.queued_frames("bram") == 0
        after = await plugin.collect_until(lambda r: bool(ends(r)), within_s=10)
        tail = await plugin.collect(0.3)
    assert [(e.npc, e.reason) for e in ends(after)] == [("bram", "stopped")]
    assert len(after.frames) <= 2  # at most the frame in flight when stop was called
    assert tail.frames == []
    assert len(before.frames) + len(after.frames) < 150


async def test_a_plugin_can_stop_an_npc(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await eventually(lambda: world.player("Alice") is not None)
        server.play("bram", tone(3.0, PIPER_RATE), PIPER_RATE)
        await plugin.collect_until(lambda r: len(r.frames) >= 5, within_s=10)
        await plugin.stop_npc("bram")
        await plugin.stop_npc("nobody")
        after = await plugin.collect_until(lambda r: bool(ends(r)) and bool(r.of_type("error")), within_s=10)
    assert heard.stops == ["bram"]
    assert [e.reason for e in ends(after)] == ["stopped"]
    [error] = [m for m in after.messages if isinstance(m, ErrorMessage)]
    assert error.code == "unknown_npc"


async def test_a_plugin_stop_lets_the_hook_tell_which_sentences_were_heard(world: SpatialWorld) -> None:
    heard_at_stop: list[list[int]] = []

    async def on_npc_stop(npc: str) -> None:
        heard_at_stop.append(server.heard(npc, "t1"))

    async def ignore_utterance(_: PlayerUtterance) -> None:
        pass

    server = BridgeServer(
        world, server=SERVER, token=TOKEN, on_utterance=ignore_utterance, on_npc_stop=on_npc_stop, limits=FAST
    )
    await server.start("127.0.0.1", 0)
    try:
        async with client(server) as plugin:
            await plugin.connect()
            await plugin.join(0, "Alice", at(2, 0))
            await eventually(lambda: world.player("Alice") is not None)
            server.play("bram", tone(0.1, PIPER_RATE), PIPER_RATE, mark=("t1", 0))  # 5 frames
            server.play("bram", tone(3.0, PIPER_RATE), PIPER_RATE, mark=("t1", 1))
            await plugin.collect_until(lambda r: len(r.frames) >= 10, within_s=10)
            await plugin.stop_npc("bram")
            after = await plugin.collect_until(lambda r: bool(ends(r)), within_s=10)
    finally:
        await server.close()
    assert heard_at_stop == [[0]]
    assert [e.reason for e in ends(after)] == ["stopped"]
    assert server.queued_frames("bram") == 0


async def test_a_tick_for_many_players_is_split_to_respect_the_message_limit(world: SpatialWorld) -> None:
    limits = FAST.model_copy(update={"max_message_bytes": 8192})  # two stereo frames per message at most
    async with (
        running_bridge(world, limits) as (server, _),
        BridgeClient(
            server.url,
            server=SERVER,
            token=TOKEN,
            max_size=8192,  # a bigger message would close the connection
        ) as plugin,
    ):
        await plugin.connect()
        for index in range(5):
            await plugin.join(index, f"P{index}", at(index, 1))
        await eventually(lambda: world.player("P4") is not None)
        server.play("bram", tone(0.1, PIPER_RATE), PIPER_RATE)
        received = await plugin.collect_until(lambda r: bool(ends(r)), within_s=10)
    for index in range(5):
        assert len(received.audio(FrameKind.MIXED, index)) == 5 * 960


async def test_a_source_mode_plugin_places_voices_as_the_host_mixes_them(world: SpatialWorld) -> None:
    """The reference client in source mode (placing each NPC itself, per the protocol document) hears the same
    levels on the same side as a mixed-mode player standing in the same spot."""
    spot = at(3, 3, yaw=45)
    async with running_bridge(world) as (server, _):

        async def listen(name: str, mode: OutputMode) -> SimulationResult:
            return await simulate_player(
                server.url, server=SERVER, token=TOKEN, player=name, position=spot, listen_s=2.0, mode=mode
            )

        async def speak() -> None:
            await eventually(lambda: world.player("Mixed") is not None and world.player("Placed") is not None)
            server.play("bram", tone(0.6, PIPER_RATE), PIPER_RATE)

        mixed, placed, _ = await asyncio.gather(listen("Mixed", "mixed"), listen("Placed", "source"), speak())
    assert mixed.npcs_heard == placed.npcs_heard == ["bram"]
    assert mixed.frames == placed.frames == 30
    for ear in (0, 1):
        assert rms(placed.heard[:, ear]) == pytest.approx(rms(mixed.heard[:, ear]), rel=0.05)
    # Facing south-west (yaw 45), the right hand points north-west, where Bram stands: right ear only.
    assert rms(mixed.heard[:, 1]) > 1000 and rms(mixed.heard[:, 0]) < 1
