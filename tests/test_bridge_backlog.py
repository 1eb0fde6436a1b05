"""800 talking players on one bridge: microphone frames waiting for the VAD stay bounded (the oldest are dropped and
counted) instead of growing the host's memory by 800 MB in 40 s as they used to."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from proximity_audio.bridge_client import BridgeClient
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import FRAME_SAMPLES, Pong, parse_server_message
from proximity_audio.world import SpatialWorld
from tests.bridge_support import client, running_bridge, tone

PLAYERS_PER_CONNECTION = 200
CONNECTIONS = 4  # 800 players
TICKS = 100  # 2 s of speech each per round, sent as fast as the sockets take it
FRAMES_PER_MESSAGE = 100  # 100 x 1,928 bytes stays under the 256 KiB message limit
# Stated bounds, measured on 2 cores: 800 players' VAD and resampler state, socket buffers and the allocator's high
# water mark take the host from ~190 to ~420 MB, and the frames cap (20,000 x 1,928 bytes = 39 MB) holds the backlog.
# Memory settles after a round or two (the allocator's high-water mark); a third round must add at most a few MB:
# flat, not growing with the backlog (measured: +55, +15, +5, +3 MB per round after the first).
RSS_GROWTH_BOUND_MB = 500
THIRD_ROUND_GROWTH_MB = 40
LIMITS = BridgeLimits(max_frames_per_second=1000, frame_burst=1000)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_800_talking_players_keep_the_microphone_backlog_and_memory_bounded() -> None:
    speech = tone(0.02, 48_000)[:FRAME_SAMPLES]
    async with running_bridge(SpatialWorld(), LIMITS) as (server, _):
        before = rss_mb()
        peak_waiting = 0

        async def watch() -> None:
            nonlocal peak_waiting
            while True:
                peak_waiting = max(peak_waiting, server.frames_waiting)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        plugins = [client(server) for _ in range(CONNECTIONS)]
        try:
            for number, plugin in enumerate(plugins):
                await plugin.connect()
                for index in range(PLAYERS_PER_CONNECTION):
                    await plugin.join(index, f"p{number}_{index}")
            after: list[float] = []
            for round_number in range(3):
                await asyncio.gather(*(_talk(plugin, speech, first_tick=round_number * TICKS) for plugin in plugins))
                after.append(rss_mb())
            await plugins[0].ping(nonce=3)  # the bridge still answers
            while not isinstance(pong := parse_server_message(str(await plugins[0].ws.recv())), Pong):
                pass
            assert pong.nonce == 3
        finally:
            watcher.cancel()
            for plugin in plugins:
                await plugin.close()
        assert peak_waiting <= LIMITS.max_pending_frames
        assert server.frames_dropped > 0  # the VAD could not keep up with 40,000 frames/s: the oldest went
        assert after[-1] - before < RSS_GROWTH_BOUND_MB, f"RSS grew {after[-1] - before:.0f} MB"
        assert after[2] - after[1] < THIRD_ROUND_GROWTH_MB, f"the third round added {after[2] - after[1]:.0f} MB"


async def _talk(plugin: BridgeClient, speech: np.ndarray, *, first_tick: int) -> None:
    for tick in range(first_tick, first_tick + TICKS):
        for first in range(0, PLAYERS_PER_CONNECTION, FRAMES_PER_MESSAGE):
            await plugin.send_microphones([(i, tick, speech) for i in range(first, first + FRAMES_PER_MESSAGE)])
