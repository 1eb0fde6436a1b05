"""The /bridge connection over a real WebSocket: handshake, close codes, error replies that keep the connection
usable, size, rate and player limits, idle connections."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from proximity_audio.bridge_client import BridgeClient, BridgeRefusedError
from proximity_audio.limits import BridgeLimits
from proximity_audio.outbox import CONTROL_KEPT, Outbox
from proximity_audio.protocol import (
    HEADER,
    MAGIC,
    MONO_BYTES,
    CloseCode,
    ErrorCode,
    ErrorMessage,
    FrameKind,
    Pong,
    encode_frame,
)
from proximity_audio.world import SpatialWorld
from tests.bridge_support import FAST, SERVER, TOKEN, at, client, eventually, running_bridge

SILENT = np.zeros(960, dtype=np.int16)


@pytest.fixture
def world() -> SpatialWorld:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    return world


async def expect_close(url: str, first: str | bytes | None) -> ConnectionClosed:
    async with connect(url) as ws:
        if first is not None:
            await ws.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    return closed.value


def hello(**overrides: object) -> str:
    return json.dumps({"type": "hello", "protocol_versions": [1], "server": SERVER, "token": TOKEN, **overrides})


async def test_welcome_describes_format_limits_and_npcs(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _), client(server, mode="source") as plugin:
        welcome = await plugin.connect()
        assert (welcome.protocol_version, welcome.mode) == (1, "source")
        assert (welcome.audio.sample_rate, welcome.audio.frame_samples, welcome.audio.channels) == (48_000, 960, 1)
        assert welcome.limits.max_frames_per_second == FAST.max_frames_per_second
        assert [(n.npc, n.npc_index, n.speaking_range) for n in welcome.npcs] == [("bram", 0, 16.0)]


@pytest.mark.parametrize(("token", "server_name"), [("wrong-token", SERVER), (TOKEN, "creative")])
async def test_a_wrong_token_or_server_closes_with_4001(world: SpatialWorld, token: str, server_name: str) -> None:
    async with running_bridge(world) as (server, _):
        with pytest.raises(BridgeRefusedError) as refused:
            await BridgeClient(server.url, server=server_name, token=token).connect()
        assert refused.value.code == CloseCode.BAD_TOKEN == 4001
        assert "wrong-token" not in refused.value.reason and server.connections == 0


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (hello(protocol_versions=[2, 3]), CloseCode.UNSUPPORTED_VERSION),
        (json.dumps({"type": "ping"}), CloseCode.HELLO_EXPECTED),
        ("hello?", CloseCode.HELLO_EXPECTED),
        (bytes(16), CloseCode.HELLO_EXPECTED),
        (json.dumps({"type": "é" * 60}), CloseCode.HELLO_EXPECTED),  # the reason echoed must fit a close frame
    ],
)
async def test_a_bad_handshake_closes_with_its_code(world: SpatialWorld, first: str | bytes, code: int) -> None:
    async with running_bridge(world) as (server, _):
        closed = await expect_close(server.url, first)
        assert closed.rcvd is not None and closed.rcvd.code == code


async def test_no_hello_in_time_closes_with_4003(world: SpatialWorld) -> None:
    async with running_bridge(world, BridgeLimits(hello_timeout_s=0.2)) as (server, _):
        closed = await expect_close(server.url, None)
        assert closed.rcvd is not None and closed.rcvd.code == CloseCode.HELLO_EXPECTED


async def test_only_the_bridge_path_is_served(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url.replace("/bridge", "/admin"))
        assert refused.value.response.status_code == 404


async def test_unknown_messages_and_bad_frames_get_errors_and_the_connection_keeps_working(
    world: SpatialWorld,
) -> None:
    async with running_bridge(world) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.ws.send(json.dumps({"type": "teleport", "to": "spawn"}))
        valid = encode_frame(FrameKind.MICROPHONE, 0, 0, bytes(MONO_BYTES))
        await plugin.ws.send(valid + HEADER.pack(MAGIC, 1, 0, 1) + bytes(100))  # a good frame, then a truncated one
        await plugin.ws.send(encode_frame(FrameKind.MICROPHONE, 7, 0, bytes(MONO_BYTES)))  # index 7 never joined
        await plugin.ws.send('{"type": "player_join", "index": 1}')
        await plugin.ping(nonce=42)
        await plugin.send_microphone(0, 1, SILENT)  # a later valid frame
        replies = [await plugin.receive() for _ in range(5)]
        errors = [r for r in replies if isinstance(r, ErrorMessage)]
        assert [e.code for e in errors] == [
            ErrorCode.UNKNOWN_TYPE,
            ErrorCode.BAD_FRAME,
            ErrorCode.UNKNOWN_PLAYER,
            ErrorCode.BAD_MESSAGE,
        ]
        assert "teleport" in errors[0].message and "1928" in errors[1].message and "player" in errors[3].message
        assert replies[4] == Pong(nonce=42)
        await eventually(lambda: server.stats.frames_in == 2)


async def test_an_oversize_message_closes_with_1009(world: SpatialWorld) -> None:
    async with running_bridge(world, BridgeLimits(max_message_bytes=4096)) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as closed:
            await plugin.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


async def test_frames_beyond_the_rate_limit_are_dropped_with_one_error(world: SpatialWorld) -> None:
    limits = BridgeLimits(max_frames_per_second=50, frame_burst=5)
    async with running_bridge(world, limits) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        for sequence in range(40):
            await plugin.send_microphone(0, sequence, SILENT)
        await plugin.ping(nonce=1)
        replies = []
        while not isinstance(reply := await plugin.receive(), Pong):
            replies.append(reply)
        assert [r.code for r in replies if isinstance(r, ErrorMessage)] == [ErrorCode.RATE_LIMITED]
        assert server.stats.frames_rate_limited >= 20
        assert server.stats.frames_in + server.stats.frames_rate_limited == 40


async def test_silence_filled_into_gaps_counts_against_the_rate_limit(world: SpatialWorld) -> None:
    """Sequence numbers that skip 25 each frame must not turn every frame into 26 frames of audio."""
    limits = BridgeLimits(max_frames_per_second=50, frame_burst=5)
    async with running_bridge(world, limits) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        started = time.monotonic()
        for frame in range(40):
            await plugin.send_microphone(0, frame * (limits.max_gap_frames + 1), SILENT)
        await plugin.ping(nonce=1)
        while not isinstance(await plugin.receive(), Pong):
            pass
        elapsed = time.monotonic() - started
    audio_frames = server.stats.frames_in + server.stats.frames_filled
    allowed = limits.frame_burst + limits.max_gap_frames + math.ceil(limits.max_frames_per_second * elapsed)
    assert server.stats.frames_filled > 0
    assert audio_frames <= allowed


async def test_player_limit_positions_and_leave(world: SpatialWorld) -> None:
    async with (
        running_bridge(world, FAST.model_copy(update={"max_players": 2})) as (server, _),
        client(server) as plugin,
    ):
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.join(1, "Bob", at(30, 0))
        await plugin.join(2, "Carol", at(1, 0))
        await plugin.move({1: at(3, 3, yaw=90), 5: at(0, 0)})
        await plugin.leave(0)
        await plugin.ping()
        replies = []
        while not isinstance(reply := await plugin.receive(), Pong):
            replies.append(reply)
        assert [r.code for r in replies if isinstance(r, ErrorMessage)] == [
            ErrorCode.TOO_MANY_PLAYERS,
            ErrorCode.UNKNOWN_PLAYER,
        ]
        assert world.player("Bob") == at(3, 3, yaw=90)
        assert world.player("Carol") is None
        await eventually(lambda: world.player("Alice") is None)


async def test_a_join_refused_for_a_name_in_use_leaves_the_player_on_its_index(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.join(1, "Bob", at(3, 0))
        await plugin.join(0, "Bob", at(4, 0))
        await plugin.move({0: at(5, 5)})
        await plugin.ping()
        replies = []
        while not isinstance(reply := await plugin.receive(), Pong):
            replies.append(reply)
        assert [r.code for r in replies if isinstance(r, ErrorMessage)] == [ErrorCode.BAD_MESSAGE]
        assert world.player("Alice") == at(5, 5)
        assert world.player("Bob") == at(3, 0)


async def test_an_idle_connection_is_closed_with_4008(world: SpatialWorld) -> None:
    async with running_bridge(world, BridgeLimits(idle_timeout_s=0.3)) as (server, _), client(server) as plugin:
        await plugin.connect()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await plugin.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.IDLE
        await eventually(lambda: server.connections == 0)


async def test_players_of_a_closed_connection_leave_the_world(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _):
        async with client(server) as plugin:
            await plugin.connect()
            await plugin.join(0, "Alice", at(2, 0))
            await eventually(lambda: world.player("Alice") is not None)
        await eventually(lambda: world.player("Alice") is None and server.connections == 0)


async def test_a_rejoin_keeps_the_new_position(world: SpatialWorld) -> None:
    async with running_bridge(world) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.join(0, "Alice", at(5, 5))  # the plugin re-sent its players after a hiccup
        await plugin.ping()
        assert isinstance(await plugin.receive(), Pong)
        await eventually(lambda: server.stats.frames_in == 0 and world.player("Alice") == at(5, 5))
        await plugin.send_microphone(0, 0, SILENT)
        await eventually(lambda: server.stats.frames_in == 1)
        assert world.player("Alice") == at(5, 5)


async def _read_ws_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def test_a_peer_that_ignores_pings_is_closed_with_1011(world: SpatialWorld) -> None:
    """A raw WebSocket peer that never answers pings (a hung plugin): the host pings, then closes."""
    limits = BridgeLimits(ping_interval_s=0.2, ping_timeout_s=0.2)
    async with running_bridge(world, limits) as (server, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /bridge HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        payload, mask = hello().encode(), os.urandom(4)
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        opcodes = []
        try:
            async with asyncio.timeout(10):
                while (frame := await _read_ws_frame(reader))[0] != 0x8:
                    opcodes.append(frame[0])
            close_code = int.from_bytes(frame[1][:2], "big")
        finally:
            writer.close()
        assert opcodes[0] == 0x1 and 0x9 in opcodes  # the welcome, then at least one ping
        assert close_code == CloseCode.KEEPALIVE_TIMEOUT == 1011


async def test_a_plugin_that_pings_faster_than_it_reads_gets_a_bounded_number_of_pongs() -> None:
    outbox = Outbox(tick_capacity=25)
    outbox.put_control("welcome")
    for nonce in range(CONTROL_KEPT * 10):
        outbox.put_control(f"pong {nonce}")
    sent: list[str | bytes] = []

    async def send(message: str | bytes) -> None:
        sent.append(message)

    drain = asyncio.create_task(outbox.drain_forever(send))
    try:
        await eventually(lambda: len(sent) >= CONTROL_KEPT)
        await asyncio.sleep(0.05)  # room for anything still queued beyond the bound to show up
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
    assert sent == ["welcome", *(f"pong {nonce}" for nonce in range(CONTROL_KEPT - 1))]


async def test_a_plugin_that_reads_too_slowly_loses_its_oldest_ticks_of_audio_not_the_stream_messages() -> None:
    outbox = Outbox(tick_capacity=3)
    outbox.put_stream_message("start")
    for tick in range(5):  # each tick split in two messages by the size limit: capacity counts ticks, not messages
        outbox.put_tick([(f"tick {tick} a".encode(), 2), (f"tick {tick} b".encode(), 1)])
    outbox.put_stream_message("end")
    sent: list[str | bytes] = []

    async def send(message: str | bytes) -> None:
        sent.append(message)

    drain = asyncio.create_task(outbox.drain_forever(send))
    try:
        await eventually(lambda: "end" in sent)
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
    kept = [f"tick {tick} {part}".encode() for tick in (2, 3, 4) for part in "ab"]
    assert sent == ["start", *kept, "end"]
    assert outbox.frames_dropped == 2 * 3
