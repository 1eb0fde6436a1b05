"""Memory pressure degrades the bridge instead of killing it: a bridge process whose resident memory really rises above
its ceiling (a ballast allocated inside it, standing for whatever ate the memory) refuses a new plugin connection
and a new player with the reason, keeps answering the plugin already connected, and welcomes newcomers again once
its memory is back under the ceiling."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from proximity_audio.bridge_client import BridgeClient, BridgeRefusedError
from proximity_audio.protocol import CloseCode, ErrorMessage, Pong, parse_server_message
from tests.bridge_support import SERVER, TOKEN

BALLAST_MB = 300
HEADROOM_MB = 150  # the ceiling sits this far above the process's resident memory once the bridge runs

# The process prints its port, then obeys "grow" / "shrink" on stdin and says "over" / "under" once its guard,
# reading the real RSS every 50 ms, has seen the change.
_BRIDGE_PROCESS = f"""
import asyncio, logging, sys
from host.memory_guard import MemoryGuard, resident_bytes
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.world import SpatialWorld

async def ignore(_):
    pass

async def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    guard = MemoryGuard(None)
    server = BridgeServer(SpatialWorld(), server={SERVER!r}, token={TOKEN!r}, on_utterance=ignore, memory=guard)
    await server.start("127.0.0.1", 0)
    guard.ceiling = resident_bytes() + {HEADROOM_MB} * 2**20
    watching = asyncio.create_task(guard.watch(asyncio.Event(), interval_s=0.05))
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    ballast = None
    while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if command == "grow":
            ballast = b"x" * ({BALLAST_MB} * 2**20)  # written, so resident
            while not guard.over:
                await asyncio.sleep(0.01)
            print("over", flush=True)
        elif command == "shrink":
            ballast = None  # one large block: given back to the system at once
            while guard.over:
                await asyncio.sleep(0.01)
            print("under", flush=True)
    watching.cancel()

asyncio.run(main())
"""


class BridgeProcess:
    def __init__(self, log_path: Path) -> None:
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BRIDGE_PROCESS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        self.log_path = log_path

    async def line(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert line, f"the bridge process ended:\n{self.log_path.read_text()}"
        return line.decode().strip()

    async def command(self, command: str, answer: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        self.process.stdin.flush()
        assert await self.line() == answer

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory is read from /proc")
async def test_above_the_memory_ceiling_newcomers_are_refused_and_the_connected_plugin_is_served(
    tmp_path: Path,
) -> None:
    bridge = BridgeProcess(tmp_path / "bridge.log")
    try:
        url = f"ws://127.0.0.1:{await bridge.line()}/bridge"
        async with BridgeClient(url, server=SERVER, token=TOKEN, plugin="already in") as plugin:
            await plugin.connect()
            await plugin.join(0, "Alex")
            await bridge.command("grow", "over")

            with pytest.raises(BridgeRefusedError) as refused:
                async with BridgeClient(url, server=SERVER, token=TOKEN, plugin="newcomer") as newcomer:
                    await newcomer.connect()
            assert refused.value.code == CloseCode.TRY_AGAIN_LATER
            assert "short of memory" in refused.value.reason and "try again later" in refused.value.reason

            await plugin.join(1, "Blake")  # a new player on the connection already in: refused, with the reason
            error = await _next_reply(plugin)
            assert isinstance(error, ErrorMessage) and error.code == "try_again_later"
            assert "'Blake' refused" in error.message and "short of memory" in error.message
            await plugin.ping(nonce=7)  # ...while the connection itself keeps being answered
            pong = await _next_reply(plugin)
            assert isinstance(pong, Pong) and pong.nonce == 7

            await bridge.command("shrink", "under")
            async with BridgeClient(url, server=SERVER, token=TOKEN, plugin="newcomer") as newcomer:
                assert (await newcomer.connect()).type == "welcome"
            await plugin.join(1, "Blake")
            await plugin.ping(nonce=8)
            assert await _next_reply(plugin) == Pong(nonce=8)  # no error before it: Blake joined
        assert bridge.process.poll() is None, bridge.log_path.read_text()
    finally:
        bridge.stop()
    log = bridge.log_path.read_text()
    assert log.count("above the ceiling") == 1, log
    assert "back under the ceiling" in log
    assert "Traceback" not in log


async def _next_reply(plugin: BridgeClient) -> object:
    """The next control message from the host (no NPC talks here, so no audio comes)."""
    return parse_server_message(str(await asyncio.wait_for(plugin.ws.recv(), 20)))
