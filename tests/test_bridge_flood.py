"""An unauthenticated flood against a bridge whose process has few file handles (RLIMIT_NOFILE 256, where the
common 1,024 used to be exhausted by 1,100 silent sockets and the host went down): a real plugin is still welcomed,
the host keeps answering, and the log does not grow with the flood."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from proximity_audio.bridge_client import BridgeClient
from proximity_audio.protocol import Pong, parse_server_message
from tests.bridge_support import SERVER, TOKEN

FILE_LIMIT = 256
FLOOD = 1100
WELCOME_WITHIN_S = 1.0  # generous: the real plugin was welcomed in 7.5 ms with enough file handles

_BRIDGE_PROCESS = f"""
import asyncio, logging, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({FILE_LIMIT}, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.world import SpatialWorld

async def ignore(_):
    pass

async def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    server = BridgeServer(SpatialWorld(), server={SERVER!r}, token={TOKEN!r}, on_utterance=ignore)
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_flood_of_silent_sockets_past_the_file_limit_leaves_the_plugin_welcome(tmp_path: Path) -> None:
    log_path = tmp_path / "bridge.log"
    process = _start_bridge(log_path)
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60))
        flood = await _flood(port, FLOOD)
        try:
            assert process.poll() is None, log_path.read_text()
            url = f"ws://127.0.0.1:{port}/bridge"
            # The first plugin waits its turn behind the flood's connections in the accept queue (how long depends on
            # how loaded the machine is); with the flood's sockets still all held, the next one is timed.
            async with BridgeClient(url, server=SERVER, token=TOKEN) as first:
                assert (await first.connect()).type == "welcome"
            started = time.monotonic()
            async with BridgeClient(url, server=SERVER, token=TOKEN) as plugin:
                welcome = await plugin.connect()
                welcomed_after = time.monotonic() - started
                assert welcome.type == "welcome"
                assert welcomed_after < WELCOME_WITHIN_S, (
                    f"welcomed after {welcomed_after:.2f} s: {log_path.read_text()}"
                )
                await plugin.ping(nonce=11)
                pong = parse_server_message(str(await plugin.ws.recv()))
                assert isinstance(pong, Pong) and pong.nonce == 11
            # ...and again, while the flood still holds its sockets.
            async with BridgeClient(url, server=SERVER, token=TOKEN) as again:
                assert (await again.connect()).type == "welcome"
        finally:
            for sock in flood:
                sock.close()
        assert process.poll() is None, log_path.read_text()
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()
    log = log_path.read_text()
    assert "Traceback" not in log
    assert len(log.splitlines()) < 50, log[-3000:]


def _start_bridge(log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen([sys.executable, "-c", _BRIDGE_PROCESS], stdout=subprocess.PIPE, stderr=log_file)


async def _flood(port: int, count: int) -> list[socket.socket]:
    """`count` TCP connections from 110 loopback addresses that never send a byte."""

    async def one(n: int) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((f"127.0.{2 + n % 110 // 250}.{2 + n % 110}", 0))
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 3)
        except (TimeoutError, OSError):
            sock.close()
            return None
        return sock

    opened = await asyncio.gather(*(one(n) for n in range(count)))
    return [sock for sock in opened if sock is not None]
