"""Shared pieces of the bridge tests: a real BridgeServer on 127.0.0.1, what its hooks saw, and test audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
from websockets.exceptions import ConnectionClosed

from host.demo_assets import load_manifest
from host.events import PlayerPaused, PlayerSpeechStarted, PlayerUtterance, Position
from host.speech.audio import Int16Array, conform, read_wav
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Frame,
    FrameKind,
    NpcStreamEnd,
    NpcStreamStart,
    ServerMessage,
)
from proximity_audio.world import SpatialWorld

SERVER = "survival"
KEEPALIVE_S = 5.0  # a plugin pings while its players are silent; the host closes idle connections
TOKEN = "bridge-test-token"
# Tests send recorded speech faster than real time; the rate limit and the VAD backlog bound have their own tests.
FAST = BridgeLimits(max_frames_per_second=1000, frame_burst=1000, max_pending_frames_per_player=10_000)


def at(x: float, z: float, *, yaw: float = 0.0, dimension: str = "minecraft:overworld") -> Position:
    return Position(x=x, y=64.0, z=z, yaw=yaw, dimension=dimension)


@dataclass
class Heard:
    """What the server reported through its hooks."""

    utterances: list[PlayerUtterance] = field(default_factory=list)
    starts: list[PlayerSpeechStarted] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    pauses: list[PlayerPaused] = field(default_factory=list)

    async def on_speech_paused(self, event: PlayerPaused) -> None:
        self.pauses.append(event)

    async def on_utterance(self, event: PlayerUtterance) -> None:
        self.utterances.append(event)

    async def on_speech_started(self, event: PlayerSpeechStarted) -> None:
        self.starts.append(event)

    async def on_npc_stop(self, npc: str) -> None:
        self.stops.append(npc)


@asynccontextmanager
async def running_bridge(world: SpatialWorld, limits: BridgeLimits = FAST) -> AsyncIterator[tuple[BridgeServer, Heard]]:
    heard = Heard()
    server = BridgeServer(
        world,
        server=SERVER,
        token=TOKEN,
        on_utterance=heard.on_utterance,
        on_speech_started=heard.on_speech_started,
        on_npc_stop=heard.on_npc_stop,
        on_speech_paused=heard.on_speech_paused,
        limits=limits,
    )
    await server.start("127.0.0.1", 0)
    try:
        yield server, heard
    finally:
        await server.close()


def client(server: BridgeServer, *, mode: str = "mixed", token: str = TOKEN) -> BridgeClient:
    return BridgeClient(server.url, server=SERVER, token=token, mode=mode)  # type: ignore[arg-type]


async def eventually(condition: Callable[[], bool], within_s: float = 15.0) -> None:
    """Wait until `condition` holds (the server works on its own tasks); fail after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def recording_48k(file: str) -> Int16Array:
    return conform(read_wav(load_manifest().get(file).path), SAMPLE_RATE)


def frames_of(samples: Int16Array, *, trailing_silence_s: float = 0.0) -> list[Int16Array]:
    """20 ms frames of `samples` (zero-padded), then silence so the VAD can hear the speech end."""
    silence = np.zeros(int(trailing_silence_s * SAMPLE_RATE), dtype=np.int16)
    joined = np.concatenate((samples, silence))
    padded = np.zeros(-(-len(joined) // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(joined)] = joined
    return list(padded.reshape(-1, FRAME_SAMPLES))


def tone(seconds: float, rate: int, amplitude: int = 16_000) -> Int16Array:
    t = np.arange(int(seconds * rate)) / rate
    samples: Int16Array = np.rint(amplitude * np.sin(2 * np.pi * 330 * t)).astype(np.int16)
    return samples


@dataclass
class Player:
    """One plugin connection with one player, and everything it received in order (run `listen` and `keepalive`)."""

    client: BridgeClient
    received: list[ServerMessage | Frame] = field(default_factory=list)

    async def listen(self) -> None:
        while True:
            try:
                item = await self.client.receive()
            except ConnectionClosed:
                return
            self.received.extend(item) if isinstance(item, list) else self.received.append(item)

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self.client.ping()
            except ConnectionClosed:
                return

    def streams(self, npc: str = "bram") -> list[tuple[list[Frame], str | None]]:
        """The NPC's streams as heard: the mixed frames between each start and its end, and how it ended."""
        streams: list[tuple[list[Frame], str | None]] = []
        for item in self.received:
            if isinstance(item, NpcStreamStart) and item.npc == npc:
                streams.append(([], None))
            elif isinstance(item, NpcStreamEnd) and item.npc == npc:
                streams[-1] = (streams[-1][0], item.reason)
            elif isinstance(item, Frame) and item.kind is FrameKind.MIXED and streams:
                streams[-1][0].append(item)
        return streams

    def frames(self) -> list[Frame]:
        return [item for item in self.received if isinstance(item, Frame)]
