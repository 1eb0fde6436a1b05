"""Soak benchmark: the host's gateway, speech and brain roles in this process on a copy of the example village, with
SOAK_PLAYERS bridge players on 127.0.0.1 talking on and off (recorded questions, then silence and pings) and a chat
line every CHAT_EVERY_S, for NPC_HOST_SOAK_S seconds (default 120; the 30-minute figure is
`NPC_HOST_SOAK_S=1800 python -m bench soak`). The models load and the personas are warmed before the clock starts.

Every SAMPLE_EVERY_S it samples the process's resident memory and open files; it reports them per minute with the
turns answered, and fails its own figure (raises, naming the numbers) when either keeps growing through the second
half of the run: a least-squares slope over those samples above RSS_SLOPE_MB_PER_MIN (and a rise above RSS_RISE_MB),
or above FILES_SLOPE_PER_MIN (and a rise above FILES_RISE).
Nothing leaves 127.0.0.1; the Minecraft adapter of the example finds no game server there and retries quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.village import SERVER, example_village
from host.bus.streams import StreamKind, stream_for, stream_name
from host.demo_assets import load_manifest
from host.events import Event, NpcTurnEnded, PlayerSaid, Position
from host.roles.brain import BrainRole
from host.roles.gateway import GatewayRole
from host.roles.runner import Role, make_brain, supervise
from host.roles.services import HostServices
from host.roles.speech import SpeechRole
from host.speech.audio import conform, read_wav
from host.voice.warmup import warm_personas
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.protocol import SAMPLE_RATE

TOKEN = "soak-bench-bridge-token"
SOAK_PLAYERS = int(os.environ.get("NPC_HOST_SOAK_PLAYERS", "6"))
CHAT_EVERY_S = 10.0
SAMPLE_EVERY_S = 10.0
PAUSE_BETWEEN_QUESTIONS_S = 8.0
WARMUP_SHARE = 0.5  # the first turns allocate the models' working memory once; a leak still grows in the second half
RSS_SLOPE_MB_PER_MIN = 10.0
RSS_RISE_MB = 40.0
FILES_SLOPE_PER_MIN = 2.0
FILES_RISE = 10


class SoakGrowthError(RuntimeError):
    """Memory or open files kept growing during the soak."""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    if len(samples) < 3:
        return 0.0
    seconds = np.array([t for t, _ in samples])
    values = np.array([v for _, v in samples])
    return float(np.polyfit(seconds / 60.0, values, 1)[0])


async def run() -> dict[str, Any]:
    duration_s = float(os.environ.get("NPC_HOST_SOAK_S", "120"))
    async with example_village("soak") as services:
        return await _soak(services, duration_s)


async def _soak(services: HostServices, duration_s: float) -> dict[str, Any]:
    stop = asyncio.Event()
    # Models load before the clock starts, as a long-running host has them: the soak measures the steady state.
    brain = make_brain(services)
    await warm_personas(brain, SERVER)
    speech = SpeechRole(services)
    await speech.whisper.load()
    for npc in services.registry.npcs(SERVER).values():
        await speech.synthesizer.load(npc.voice)
    roles: list[Role] = [
        GatewayRole(services, environ={"NPC_HOST_BRIDGE_TOKEN_EXAMPLE": TOKEN}),
        speech,
        BrainRole(services, brain),
    ]
    answered: list[NpcTurnEnded] = []

    async def count(event: Event) -> None:
        if isinstance(event, NpcTurnEnded):
            answered.append(event)

    bus = services.bus
    tasks = [asyncio.create_task(supervise(role, stop)) for role in roles]
    tasks.append(
        asyncio.create_task(bus.consume(stream_name(SERVER, StreamKind.TURNS), "soak", "soak", count, stop=stop))
    )
    samples: list[tuple[float, float, int]] = []
    chat_lines = 0
    began = time.monotonic()
    try:
        url = f"ws://127.0.0.1:{services.settings.bridge_port}/bridge"
        await _wait_for_bridge(url)
        questions = await _questions()
        npcs = list(services.registry.npcs(SERVER).values())
        talkers = [
            asyncio.create_task(_player(url, number, questions, npcs[number % len(npcs)].world.position, stop))
            for number in range(SOAK_PLAYERS)
        ]
        next_chat = next_sample = time.monotonic()
        while (elapsed := time.monotonic() - began) < duration_s:
            if any(task.done() for task in tasks[:3]):
                break  # a role failed: supervise logged it; the figure below reports it
            now = time.monotonic()
            if now >= next_sample:
                samples.append((elapsed, rss_mb(), open_files()))
                next_sample += SAMPLE_EVERY_S
            if now >= next_chat:
                spot = npcs[chat_lines % len(npcs)].world.position
                said = PlayerSaid(
                    server=SERVER,
                    player=f"Chatter{chat_lines % 3}",
                    text="Good day! What news today?",
                    position=Position(x=spot.x + 1.0, y=spot.y, z=spot.z),
                )
                await bus.publish(stream_for(said), said)
                chat_lines += 1
                next_chat += CHAT_EVERY_S
            await asyncio.sleep(0.5)
        samples.append((time.monotonic() - began, rss_mb(), open_files()))
    finally:
        stop.set()
        for talker in locals().get("talkers", []):
            talker.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [str(outcome) for outcome in outcomes if isinstance(outcome, Exception)]
    return _figure(samples, duration_s, len(answered), chat_lines, failures)


def _figure(
    samples: list[tuple[float, float, int]], duration_s: float, turns: int, chat_lines: int, failures: list[str]
) -> dict[str, Any]:
    per_minute: dict[str, dict[str, float]] = {}
    for elapsed, rss, files in samples:
        per_minute[f"minute_{int(elapsed // 60)}"] = {"rss_mb": round(rss), "open_files": files}
    settled = [sample for sample in samples if sample[0] >= WARMUP_SHARE * duration_s]
    rss_slope = slope_per_minute([(t, rss) for t, rss, _ in settled])
    files_slope = slope_per_minute([(t, float(files)) for t, _, files in settled])
    rss_rise = settled[-1][1] - settled[0][1] if settled else 0.0
    files_rise = settled[-1][2] - settled[0][2] if settled else 0
    growing = []
    if rss_slope > RSS_SLOPE_MB_PER_MIN and rss_rise > RSS_RISE_MB:
        growing.append(f"RSS grows {rss_slope:.1f} MB/min ({rss_rise:.0f} MB after the warm-up)")
    if files_slope > FILES_SLOPE_PER_MIN and files_rise > FILES_RISE:
        growing.append(f"open files grow {files_slope:.1f}/min ({files_rise} after the warm-up)")
    figure: dict[str, Any] = {
        "duration_s": round(samples[-1][0]) if samples else 0,
        "players": SOAK_PLAYERS,
        "chat_lines": chat_lines,
        "turns_answered": turns,
        "per_minute": per_minute,
        "rss_slope_mb_per_min": round(rss_slope, 1),
        "open_files_slope_per_min": round(files_slope, 2),
        "flat": not growing and not failures,
    }
    if failures:
        raise SoakGrowthError(f"a role failed during the soak: {'; '.join(failures)}; {figure}")
    if growing:
        raise SoakGrowthError(f"{'; '.join(growing)}: {figure}")
    return figure


async def _player(url: str, number: int, questions: list[np.ndarray], near: Any, stop: asyncio.Event) -> None:
    """One plugin connection with one player near an NPC: a question in real time, then silence with pings."""
    position = Position(x=near.x + 1.5, y=near.y, z=near.z)
    sequence = 0
    async with BridgeClient(url, server=SERVER, token=TOKEN, plugin="bench soak") as plugin:
        await plugin.connect()
        await plugin.join(0, f"Soaker{number}", position)
        drain = asyncio.create_task(_drain(plugin))
        try:
            turn = number
            while not stop.is_set():
                sequence = await plugin.stream_microphone(0, questions[turn % len(questions)], first_sequence=sequence)
                turn += 1
                sequence += 50 * 10  # a pause longer than the gap the bridge fills: the player stopped talking
                await plugin.ping(nonce=turn)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PAUSE_BETWEEN_QUESTIONS_S)
        finally:
            drain.cancel()


async def _drain(plugin: BridgeClient) -> None:
    """Read what the host sends (NPC voices, pongs), as a plugin does; unread, it would fill the socket."""
    with contextlib.suppress(Exception):
        while True:
            await plugin.receive()


async def _questions() -> list[np.ndarray]:
    recordings = [recording for recording in load_manifest().recordings if len(recording.utterances) == 1]
    loaded = [await asyncio.to_thread(read_wav, recording.path) for recording in recordings]
    return [conform(samples, SAMPLE_RATE) for samples in loaded]


async def _wait_for_bridge(url: str, within_s: float = 120.0) -> None:
    """The gateway loads the VAD before it listens."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            async with BridgeClient(url, server=SERVER, token=TOKEN) as probe:
                await probe.connect()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
