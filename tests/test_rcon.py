"""The RCON client against the vanilla-exact double, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from integrations.minecraft.rcon import (
    RconAuthError,
    RconClient,
    RconError,
    RconRequestTooLongError,
    RconUnavailableError,
)
from integrations.minecraft.rcon_packets import MAX_REQUEST_BODY, encode_packet
from tests.doubles.rcon_server import RconTestServer

PASSWORD = "s3cret-Pa55word"


def _echo(command: str) -> str:
    if command.startswith("big "):
        return "".join(chr(ord("a") + i % 26) for i in range(int(command.split()[1])))
    return f"ran {command}"


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[RconTestServer]:
    async with RconTestServer(PASSWORD, _echo) as srv:
        yield srv


def _client(srv: RconTestServer, password: str = PASSWORD) -> RconClient:
    return RconClient(srv.host, srv.port, SecretStr(password), timeout_s=5.0, backoff_initial_s=0.01)


async def test_runs_a_command_and_returns_its_reply(server: RconTestServer) -> None:
    async with _client(server) as client:
        assert await client.command("list") == "ran list"
        assert await client.command("time query daytime") == "ran time query daytime"
    assert server.commands == ["list", "time query daytime"]
    assert server.logins == 1


async def test_empty_reply_and_reply_of_exactly_one_fragment(server: RconTestServer) -> None:
    server.handler = lambda command: "" if command == "empty" else "x" * 4096
    async with _client(server) as client:
        assert await client.command("empty") == ""
        assert await client.command("exact") == "x" * 4096


async def test_a_10kb_reply_is_read_whole(server: RconTestServer) -> None:
    async with _client(server) as client:
        reply = await client.command("big 10240")
        assert reply == _echo("big 10240")
        assert await client.command("after") == "ran after"


async def test_multibyte_reply_split_by_characters(server: RconTestServer) -> None:
    text = "é€" * 3000
    server.handler = lambda _command: text
    async with _client(server) as client:
        assert await client.command("unicode") == text


async def test_wrong_password_is_a_clear_error_without_the_password(
    server: RconTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(server, password="wrong-" + PASSWORD) as client:
        with pytest.raises(RconAuthError) as excinfo:
            await client.command("list")
    message = str(excinfo.value)
    assert "rejected the password" in message
    assert f"{server.host}:{server.port}" in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text
    assert server.commands == []


async def test_oversize_request_is_refused_before_sending(server: RconTestServer) -> None:
    async with _client(server) as client:
        with pytest.raises(RconRequestTooLongError, match="at most 1446"):
            await client.command("say " + "x" * MAX_REQUEST_BODY)
        longest = "say " + "y" * (MAX_REQUEST_BODY - 4)
        assert await client.command(longest) == f"ran {longest}"
    assert server.commands == [longest]
    assert server.dropped == 0


async def test_nul_in_a_command_is_refused(server: RconTestServer) -> None:
    async with _client(server) as client:
        with pytest.raises(RconError, match="NUL"):
            await client.command("say hi\x00op Mallory")
    assert server.commands == []


async def test_server_restart_mid_session_reconnects(server: RconTestServer) -> None:
    async with _client(server) as client:
        assert await client.command("before") == "ran before"
        await server.restart()
        assert await client.command("after") == "ran after"
        assert client.connections == 2
    assert server.commands == ["before", "after"]


async def test_server_down_fails_fast_then_recovers_with_backoff(server: RconTestServer) -> None:
    async with _client(server) as client:
        await client.command("one")
        await server.stop()
        with pytest.raises(RconUnavailableError):
            await client.command("lost")
        await server.start()
        for _ in range(200):
            try:
                reply = await client.command("two")
                break
            except RconUnavailableError:
                await asyncio.sleep(0.01)
        assert reply == "ran two"
    assert server.commands == ["one", "two"]


async def test_connection_dropped_by_server_is_reopened(server: RconTestServer) -> None:
    async with _client(server) as client:
        await client.command("one")
        server.disconnect_all()
        await asyncio.sleep(0.05)
        assert await client.command("two") == "ran two"


async def test_malformed_packet_makes_the_double_disconnect() -> None:
    async with RconTestServer(PASSWORD) as srv:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        good = encode_packet(1, 3, PASSWORD)
        writer.write(good + encode_packet(2, 2, "list"))  # two requests in one read: vanilla drops the connection
        await writer.drain()
        assert await reader.read() == b""
        writer.close()
        assert srv.dropped == 1
        assert srv.commands == []


async def test_peer_lying_about_length_is_refused() -> None:
    lying = socket.socket()
    lying.bind(("127.0.0.1", 0))
    lying.listen()
    port = lying.getsockname()[1]

    async def serve(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(struct.pack("<iii", 1_000_000_000, 1, 2))
        await writer.drain()

    server = await asyncio.start_server(serve, sock=lying)
    async with server, RconClient("127.0.0.1", port, SecretStr(PASSWORD), timeout_s=2.0) as client:
        with pytest.raises(RconError, match="malformed packet"):
            await client.command("list")


async def test_unanswered_read_times_out() -> None:
    async def silent(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, RconClient("127.0.0.1", port, SecretStr(PASSWORD), timeout_s=0.2) as client:
        with pytest.raises(RconUnavailableError, match="timed out"):
            await client.command("list")
        server.close()


async def test_concurrent_callers_run_one_command_at_a_time(server: RconTestServer) -> None:
    async def slow(command: str) -> str:
        await asyncio.sleep(0.001)
        return _echo(command)

    server.handler = slow
    async with _client(server) as client:
        replies = await asyncio.gather(*(client.command(f"big {500 + i * 700}") for i in range(12)))
    assert replies == [_echo(f"big {500 + i * 700}") for i in range(12)]
    assert sorted(server.commands) == sorted(f"big {500 + i * 700}" for i in range(12))
    assert server.errors == []
    assert server.dropped == 0
    assert server.logins == 1


async def test_connect_hook_runs_after_each_reconnect(server: RconTestServer) -> None:
    async with _client(server) as client:

        async def resummon(run: object) -> None:
            assert callable(run)
            await run("summon villager")

        client.add_connect_hook(resummon)
        await client.command("a")
        await server.restart()
        await client.command("b")
    assert server.commands == ["summon villager", "a", "summon villager", "b"]


async def test_a_cancelled_command_does_not_confuse_the_next(server: RconTestServer) -> None:
    release = asyncio.Event()

    async def slow_then_fast(command: str) -> str:
        if command == "slow":
            await release.wait()
        return _echo(command)

    server.handler = slow_then_fast
    async with _client(server) as client:
        slow = asyncio.ensure_future(client.command("slow"))
        await server.wait_for_commands("^slow$")
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        release.set()
        assert await client.command("fast") == "ran fast"


async def test_a_login_cut_short_is_not_reused_as_logged_in() -> None:
    connections = 0
    first_login_sent = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        request_id, packet_type = struct.unpack("<ii", (await reader.readexactly(4 + 10 + len(PASSWORD)))[4:12])
        assert packet_type == 3
        if connections == 1:
            first_login_sent.set()
            await asyncio.sleep(10)  # the first login is never answered
        writer.write(encode_packet(request_id, 2, ""))
        await writer.drain()
        await reader.read()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, RconClient("127.0.0.1", port, SecretStr(PASSWORD), timeout_s=5.0) as client:
        login = asyncio.ensure_future(client.connect())
        await first_login_sent.wait()
        login.cancel()
        with pytest.raises(asyncio.CancelledError):
            await login
        assert await client.connect() is True  # logged in afresh on a new connection
        assert connections == 2
        assert client.connections == 1
        server.close()
