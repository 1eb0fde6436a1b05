"""The bridge under hostile traffic: what gets in, what is refused, and what is said about it (proximity_audio/door.py).

Each test is an attack that hurt the host before: a 5,000-digit integer closed a plugin's connection with all its
players; token guessing was unlimited and the refusal did not name the address; a short token was accepted; sockets
that never sent a hello held file handles without end.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from host.errors import ConfigError
from proximity_audio.bridge_client import BridgeRefusedError
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.door import Door, effective_caps
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import CloseCode, ErrorCode, ErrorMessage, Pong, parse_server_message
from proximity_audio.world import SpatialWorld
from tests.bridge_support import SERVER, client, eventually, running_bridge


async def test_a_huge_integer_gets_an_error_reply_and_the_connection_stays_open() -> None:
    async with running_bridge(SpatialWorld()) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alex")
        await plugin.ws.send('{"type": "ping", "nonce": ' + "9" * 5000 + "}")
        reply = parse_server_message(str(await plugin.ws.recv()))
        assert isinstance(reply, ErrorMessage) and reply.code == ErrorCode.BAD_MESSAGE
        assert "not valid JSON" in reply.message and len(reply.message) < 300

        await plugin.ping(nonce=7)  # the same connection still answers
        pong = parse_server_message(str(await plugin.ws.recv()))
        assert isinstance(pong, Pong) and pong.nonce == 7


async def test_a_nonce_too_big_to_echo_is_refused_with_an_error() -> None:
    async with running_bridge(SpatialWorld()) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.ws.send('{"type": "ping", "nonce": ' + "9" * 4000 + "}")
        reply = parse_server_message(str(await plugin.ws.recv()))
        assert isinstance(reply, ErrorMessage) and reply.code == ErrorCode.BAD_MESSAGE
        assert len(reply.message) < 300


async def test_a_huge_integer_in_place_of_a_hello_is_a_plain_refusal(caplog: pytest.LogCaptureFixture) -> None:
    async with running_bridge(SpatialWorld()) as (server, _):
        async with connect(server.url) as ws:
            await ws.send('{"type": "hello", "protocol_versions": [' + "1" * 5000 + "]}")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.HELLO_EXPECTED
    assert "Traceback" not in caplog.text and "handler failed" not in caplog.text


async def test_token_guessing_is_stopped_per_address_and_the_address_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = BridgeLimits(failed_hellos_per_address=3, failed_hello_window_s=60)
    caplog.set_level(logging.WARNING, logger="proximity_audio")
    async with running_bridge(SpatialWorld(), limits) as (server, _):
        for guess in range(10):
            # The first three hear 4001; after that the address is cut off before the WebSocket handshake.
            expected = BridgeRefusedError if guess < 3 else InvalidHandshake
            with pytest.raises(expected):
                async with client(server, token=f"guess-number-{guess:04d}") as guesser:
                    await guesser.connect()
        # Now even the right token from that address waits for the window to pass...
        with pytest.raises(InvalidHandshake):
            async with client(server) as plugin:
                await plugin.connect()
        assert _door(server).stats.refused_banned == 8
    lines = [r.getMessage() for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert any("refused a plugin from 127.0.0.1" in line for line in lines)
    assert sum("failed 3 hellos" in line for line in lines) == 1
    assert len(lines) <= 3  # not one line per guess
    assert not any("guess-number" in r.getMessage() for r in caplog.records)


async def test_a_short_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        BridgeServer(SpatialWorld(), server=SERVER, token="hunter2", on_utterance=_ignore)
    BridgeServer(SpatialWorld(), server=SERVER, token="x" * 16, on_utterance=_ignore)


async def test_connections_without_a_hello_are_capped_per_address_and_the_oldest_make_room() -> None:
    limits = BridgeLimits(max_unauthenticated=8, max_unauthenticated_per_address=4, hello_timeout_s=30)
    async with running_bridge(SpatialWorld(), limits) as (server, _):
        door = _door(server)
        silent = [await _open_socket(server.port, "127.0.0.2") for _ in range(6)]
        await eventually(lambda: door.stats.refused_per_address == 2)
        assert door.unauthenticated == 4
        others = [await _open_socket(server.port, f"127.0.1.{n}") for n in range(6)]
        await eventually(lambda: door.stats.evicted_unauthenticated == 2)
        assert door.unauthenticated == 8
        # A real plugin still gets in: the oldest silent connection makes room for it.
        async with client(server) as plugin:
            welcome = await plugin.connect()
            assert welcome.type == "welcome"
        for sock in silent + others:
            sock.close()


async def test_plugin_connections_past_hello_are_capped() -> None:
    async with running_bridge(SpatialWorld(), BridgeLimits(max_connections=2)) as (server, _):
        async with client(server) as first, client(server) as second, client(server) as third:
            await first.connect()
            await second.connect()
            with pytest.raises(BridgeRefusedError) as refused:
                await third.connect()
            assert refused.value.code == CloseCode.TRY_AGAIN_LATER
        async with client(server) as later:  # the cap counts open connections, not connections ever made
            await eventually(lambda: _door(server).connections == 0)
            await later.connect()


def test_the_caps_leave_half_the_file_handles_to_the_rest_of_the_host() -> None:
    caps = effective_caps(BridgeLimits(), file_limit=256)
    assert caps.unauthenticated + caps.connections <= 128
    assert caps.unauthenticated_per_address <= caps.unauthenticated
    roomy = effective_caps(BridgeLimits(), file_limit=1_048_576)
    assert (roomy.unauthenticated, roomy.connections) == (
        BridgeLimits().max_unauthenticated,
        BridgeLimits().max_connections,
    )


def _door(server: BridgeServer) -> Door:
    listener = server._listener  # the door is the listener's; tests read its counters
    assert listener is not None and listener.door is not None
    return listener.door


async def _open_socket(port: int, source: str) -> socket.socket:
    """A TCP connection from `source` (any 127.x address is this machine) that never says anything."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def _ignore(_: object) -> None:
    pass


@pytest.mark.parametrize(
    "text",
    [
        "hello there",  # not JSON
        '{"type": "ping"',  # cut short
        "[1, 2, 3]",  # JSON, not an object
        '{"type": 5}',  # type not a string
        '{"type": "player_join", "index": "zero", "player": "Blake"}',  # a wrong field type
        '{"type": "player_join", "index": 70000, "player": "Blake"}',  # out of range
        '{"type": "ping", "nonce": 1.5}',  # not an integer
        '{"type": "positions", "players": [{"index": 0, "x": NaN, "y": 0, "z": 0}]}',  # NaN
        "[" * 100_000 + "]" * 100_000,  # nested beyond the JSON reader's recursion
    ],
)
async def test_anything_above_the_websocket_layer_gets_an_error_and_the_connection_stays(text: str) -> None:
    async with running_bridge(SpatialWorld()) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alex")
        await plugin.ws.send(text)
        reply = parse_server_message(str(await plugin.ws.recv()))
        assert isinstance(reply, ErrorMessage) and reply.code == ErrorCode.BAD_MESSAGE, reply
        await plugin.ping(nonce=3)
        assert parse_server_message(str(await plugin.ws.recv())) == Pong(nonce=3)


async def test_a_text_frame_that_is_not_utf8_closes_with_1007() -> None:
    """Below the protocol: RFC 6455 makes the WebSocket layer fail the connection (docs/bridge-protocol.md, 6)."""
    async with running_bridge(SpatialWorld()) as (server, _), client(server) as plugin:
        await plugin.connect()
        await plugin.ws.send(b'{"type": "ping", "x": "\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            await plugin.ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
