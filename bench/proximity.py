"""Proximity audio benchmark: CPU per second of audio for mixing and VAD with 50 players and 10 talking NPCs, and the
bridge's NPC frame latency over loopback (bounded, about 20 s).

- `mixing`: every 20 ms tick mixes 10 NPC frames for 50 listeners and encodes the 50 stereo frames, as the bridge
  does; CPU seconds per second of audio, i.e. the fraction of one core it needs.
- `vad`: 50 players all talking at once (the worst case: silent players send nothing), and 10 of them; 48 kHz frames
  resampled to 16 kHz and run through Silero, five frames (100 ms) per call: the bridge runs the VAD on whatever
  arrived while its previous batch ran, so a loaded connection batches about this much.
- `bridge`: a real BridgeServer and one plugin connection on 127.0.0.1 carrying 50 players (mixed mode); the players
  talk while 10 NPCs speak. Latency is a mixed frame's arrival minus its real-time slot (`play` time + sequence x
  20 ms), so a pacer running late counts too. CPU covers server and client (same process).
Aim (issue 6): mixing + VAD < 0.25 of a core.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from bench.report import summarize
from host.demo_assets import load_manifest
from host.events import PlayerUtterance, Position
from host.speech.audio import PIPER_RATE, Audio, Int16Array, conform, int16_to_pcm16, read_wav
from host.speech.vad import silero_session
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.microphone import PlayerMicrophone
from proximity_audio.mixer import mix_for_listeners
from proximity_audio.protocol import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, FrameKind, encode_frame
from proximity_audio.world import SpatialWorld

PLAYERS = 50
NPCS = 10
MIX_SECONDS = 10.0
VAD_SECONDS = 3.0
VAD_BATCH_FRAMES = 5
SOME_TALKING = 10  # a busy square: a fifth of the players talking at the same moment
BRIDGE_SECONDS = 4.0
SERVER, TOKEN = "bench", "bench-bridge-token"


def _world() -> SpatialWorld:
    """10 NPCs in a ring of radius 6 and 50 players spread within 12 blocks, facing every way: all in range."""
    rng = np.random.default_rng(7)
    world = SpatialWorld()
    for n in range(NPCS):
        angle = 2 * np.pi * n / NPCS
        world.place_npc(f"npc{n}", Position(x=6 * np.cos(angle), y=64, z=6 * np.sin(angle)), speaking_range=24)
    for p in range(PLAYERS):
        x, z = rng.uniform(-12, 12, size=2)
        world.move_player(f"player{p}", Position(x=x, y=64, z=z, yaw=float(rng.uniform(-180, 180))))
    return world


def _recording(name: str) -> Audio:
    return read_wav(load_manifest().get(name).path)


def _speech_48k() -> Int16Array:
    return conform(_recording("two_questions.wav"), SAMPLE_RATE)


def _npc_frames(ticks: int) -> list[dict[str, Int16Array]]:
    rng = np.random.default_rng(3)
    voice = rng.integers(-8000, 8000, size=(NPCS, ticks, FRAME_SAMPLES), dtype=np.int16)
    return [{f"npc{n}": voice[n, t] for n in range(NPCS)} for t in range(ticks)]


def bench_mixing() -> dict[str, Any]:
    world = _world()
    listeners = list(world.players)
    ticks = int(MIX_SECONDS * 1000 / FRAME_MS)
    frames = _npc_frames(ticks)
    sent = 0
    cpu = time.process_time()
    for tick in frames:
        for index, stereo in enumerate(mix_for_listeners(world, listeners, tick).values()):
            encode_frame(FrameKind.MIXED, index, 0, int16_to_pcm16(stereo))
            sent += 1
    used = time.process_time() - cpu
    return {"core_fraction": round(used / MIX_SECONDS, 4), "frames_mixed": sent, "audio_s": MIX_SECONDS}


def bench_vad(talking: int) -> dict[str, Any]:
    silero_session()
    speech = _speech_48k()
    n_frames = int(VAD_SECONDS * 1000 / FRAME_MS)
    frames = [int16_to_pcm16(f) for f in np.resize(speech, n_frames * FRAME_SAMPLES).reshape(n_frames, -1)]
    mics = [PlayerMicrophone(f"player{p}") for p in range(talking)]
    events = 0
    cpu = time.process_time()
    for start in range(0, n_frames, VAD_BATCH_FRAMES):
        for mic in mics:
            for sequence in range(start, min(start + VAD_BATCH_FRAMES, n_frames)):
                mic.accept(sequence, frames[sequence])
            events += len(mic.process())
    used = time.process_time() - cpu
    return {
        "core_fraction": round(used / VAD_SECONDS, 4),
        "players_talking": talking,
        "frames_per_call": VAD_BATCH_FRAMES,
        "vad_events": events,
    }


async def bench_bridge() -> dict[str, Any]:
    world = _world()
    players = dict(world.players)
    utterances: list[PlayerUtterance] = []

    async def heard(utterance: PlayerUtterance) -> None:
        utterances.append(utterance)

    speech = np.resize(await asyncio.to_thread(_speech_48k), int(BRIDGE_SECONDS * SAMPLE_RATE))
    recorded = await asyncio.to_thread(_recording, "bram_room.wav")
    voice = np.resize(conform(recorded, PIPER_RATE), int(BRIDGE_SECONDS * PIPER_RATE))
    server = BridgeServer(world, server=SERVER, token=TOKEN, on_utterance=heard)
    await server.start("127.0.0.1", 0)
    try:
        async with BridgeClient(server.url, server=SERVER, token=TOKEN) as plugin:
            await plugin.connect()
            for index, (name, position) in enumerate(players.items()):
                await plugin.join(index, name, position)
            cpu = time.process_time()
            for n in range(NPCS):
                server.play(f"npc{n}", voice, PIPER_RATE)
            played = time.monotonic()  # the pacer's first tick: resampling the replies is not transport latency
            async with asyncio.TaskGroup() as tasks:
                talking = tasks.create_task(_talk(plugin, speech))
                received = await plugin.collect(BRIDGE_SECONDS + 0.5)
                await talking
            used = time.process_time() - cpu
    finally:
        await server.close()
    latencies = [
        (arrival - played) * 1000 - frame.sequence * FRAME_MS
        for arrival, frame in received.frames
        if frame.kind is FrameKind.MIXED
    ]
    ordered = sorted(latencies)
    return {
        "frame_latency_ms": summarize(latencies),
        "frame_latency_p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "mixed_frames_received": len(latencies),
        "frames_dropped": server.stats.frames_out_dropped,
        "mic_frames_in": server.stats.frames_in,
        "process_core_fraction": round(used / (BRIDGE_SECONDS + 0.5), 3),
    }


async def _talk(plugin: BridgeClient, speech: Int16Array) -> None:
    """Every player sends one microphone frame per 20 ms, in real time, batched per tick as a plugin would."""
    deadline = time.monotonic()
    for sequence, frame in enumerate(speech.reshape(-1, FRAME_SAMPLES)):
        await plugin.send_microphones([(index, sequence, frame) for index in range(PLAYERS)])
        deadline += FRAME_MS / 1000
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def run() -> dict[str, Any]:
    mixing = await asyncio.to_thread(bench_mixing)
    vad_all = await asyncio.to_thread(bench_vad, PLAYERS)
    vad_some = await asyncio.to_thread(bench_vad, SOME_TALKING)
    bridge = await bench_bridge()
    return {
        "players": PLAYERS,
        "talking_npcs": NPCS,
        "mixing": mixing,
        "vad_all_talking": vad_all,
        f"vad_{SOME_TALKING}_talking": vad_some,
        "mixing_plus_vad_core_fraction": round(mixing["core_fraction"] + vad_all["core_fraction"], 4),
        f"mixing_plus_vad_{SOME_TALKING}_talking_core_fraction": round(
            mixing["core_fraction"] + vad_some["core_fraction"], 4
        ),
        "bridge": bridge,
    }
