"""One simulated player through the reference client: says a recording in real time, records what it hears.

This is what `npc-host bridge-sim` runs, and a worked example of the plugin side of the protocol.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from host.events import Position
from host.speech.audio import Int16Array
from proximity_audio.bridge_client import BridgeClient, Received, place_heard_audio
from proximity_audio.protocol import SAMPLE_RATE, ErrorMessage, FrameKind, NpcInfo, NpcStreamStart, OutputMode


@dataclass(frozen=True)
class SimulationResult:
    heard: Int16Array  # stereo (n, 2) at 48 kHz, from the moment the player joined
    frames: int
    npcs_heard: list[str]
    errors: list[ErrorMessage]


async def simulate_player(
    url: str,
    *,
    server: str,
    token: str,
    player: str,
    position: Position,
    say: Int16Array | None = None,
    listen_s: float = 10.0,
    mode: OutputMode = "mixed",
) -> SimulationResult:
    """Join as `player` at `position`, stream `say` (48 kHz mono) in real time, then listen for `listen_s` more."""
    async with BridgeClient(url, server=server, token=token, mode=mode) as client:
        welcome = await client.connect()
        await client.join(0, player, position)
        start = time.monotonic()
        talk_s = 0.0 if say is None else len(say) / SAMPLE_RATE
        async with asyncio.TaskGroup() as tasks:
            listening = tasks.create_task(client.collect(talk_s + listen_s))
            if say is not None:
                tasks.create_task(client.stream_microphone(0, say))
        received = listening.result()
    sources = {info.npc_index: info for info in welcome.npcs}
    sources.update(_stream_sources(received))
    heard = place_heard_audio(received.frames, start, player_index=0, listener=position, sources=sources)
    return SimulationResult(
        heard=heard,
        frames=sum(1 for _, f in received.frames if f.kind in (FrameKind.MIXED, FrameKind.NPC_SOURCE)),
        npcs_heard=sorted({m.npc for m in received.messages if isinstance(m, NpcStreamStart)}),
        errors=[m for m in received.messages if isinstance(m, ErrorMessage)],
    )


def _stream_sources(received: Received) -> dict[int, NpcInfo]:
    starts = [m for m in received.messages if isinstance(m, NpcStreamStart)]
    return {m.npc_index: NpcInfo(**m.model_dump(exclude={"type"})) for m in starts}
