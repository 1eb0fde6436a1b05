"""The voice bridge end to end: `npc-host run` (every role) with the example village, three players on one companion
plugin connection each, over a real WebSocket; real Silero, Whisper and Piper, and the Ollama wire double for the
replies. The hub is Redis, so the test sees every event the host publishes.

Bram stands at (4.5, 64, -3.5), hears 10 blocks and speaks 20 (linear fade). Alice stands 6 blocks east of him facing
south (he is on her right), Carol 12 blocks east facing north (he is on her left; too far to be heard), Bob 26 blocks
east (too far to hear him). No other NPC hears or reaches any of them.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import pytest_asyncio

from host.bus import Bus, RedisBus, StreamKind, stream_name
from host.config import BusSettings
from host.events import (
    Event,
    NpcAudio,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    PlayerSaid,
    PlayerSpeechStarted,
    PlayerUtterance,
    Position,
)
from host.speech.audio import Int16Array, pcm16_to_int16
from host.transcript.lines import SpokenLine
from host.transcript.reader import parse_bytes
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.protocol import (
    FRAME_MS,
    SAMPLE_RATE,
    Frame,
)
from tests.bridge_support import Player, recording_48k
from tests.bus_support import Collector, consuming
from tests.doubles.ollama_server import OllamaWireServer
from tests.host_process import START_S, HostProcess, closed_port, host_env

SERVER = "example"
TOKEN = "e2e-bridge-token"
WAIT_S = 180.0  # a bound for a loaded 2-core machine (model loads, STT, TTS), never a speed check
BRAM = Position(x=4.5, y=64.0, z=-3.5)
ALICE = Position(x=10.5, y=64.0, z=-3.5, yaw=0.0)
CAROL = Position(x=16.5, y=64.0, z=-3.5, yaw=180.0)
BOB = Position(x=30.5, y=64.0, z=-3.5)
FIRST_REPLY = (
    "Aye, friend, there is one warm room left upstairs, with a soft bed and a window over the river. "
    "It costs three emeralds a night, and breakfast is mushroom stew and fresh bread. "
    "Mind the third step on the stairs, it creaks loud enough to wake the whole inn."
)
SECOND_REPLY = "Sorry, friend, go on."
E = TypeVar("E", bound=Event)


def linear_gain(listener: Position) -> float:
    """docs/bridge-protocol.md: gain = 1 - d / R."""
    d = float(np.linalg.norm([listener.x - BRAM.x, listener.y - BRAM.y, listener.z - BRAM.z]))
    return 1.0 - d / 20.0


def rms(samples: Int16Array) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if len(samples) else 0.0


@dataclass
class Hub:
    """What the test reads from the host's hub."""

    utterances: Collector = field(default_factory=Collector)
    said: Collector = field(default_factory=Collector)
    control: Collector = field(default_factory=Collector)
    turns: Collector = field(default_factory=Collector)
    audio: Collector = field(default_factory=Collector)

    @staticmethod
    def of(collector: Collector, kind: type[E]) -> list[E]:
        return [event for event in collector.events if isinstance(event, kind)]

    def chunks(self, turn_id: str) -> list[NpcAudio]:
        return [chunk for chunk in self.of(self.audio, NpcAudio) if chunk.turn_id == turn_id]

    def audio_s(self, turn_id: str) -> float:
        return sum(len(chunk.audio) / 2 / chunk.sample_rate for chunk in self.chunks(turn_id))

    def summary(self) -> str:
        collectors = (self.utterances, self.said, self.control, self.turns)
        return "\n".join(repr(event) for collector in collectors for event in collector.events)

    def all_spoken(self, turn_id: str) -> bool:
        """Every sentence of the turn has its final audio chunk here."""
        sentences = {e.index for e in self.of(self.turns, NpcSentence) if e.turn_id == turn_id}
        return bool(sentences) and sentences <= {c.index for c in self.chunks(turn_id) if c.final}


async def until(condition: Callable[[], bool], what: str, host: HostProcess, seen: Hub) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}\n{host.output()[-6000:]}\nhub:\n{seen.summary()}")
        await asyncio.sleep(0.05)


@pytest.fixture
def village(tmp_path: Path, repo_root: Path) -> Path:
    """The example village without RCON and the server log: no game is needed, the bridge is the only way in."""
    folder = tmp_path / "profiles" / SERVER
    shutil.copytree(repo_root / "npc_profiles" / SERVER, folder)
    server_toml = folder / "server.toml"
    text = re.sub(r"(?ms)^\[rcon\]\n.*?\n\n", "", server_toml.read_text())
    server_toml.write_text(re.sub(r"(?m)^log_path = .*\n", "", text))
    return tmp_path


@pytest_asyncio.fixture(loop_scope="function")
async def hub(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[Bus, Hub]]:
    bus = RedisBus(redis_url, BusSettings(key_prefix=redis_prefix), client_name="test-bridge-e2e")
    await bus.connect()
    seen = Hub()
    streams = {
        StreamKind.UTTERANCES: seen.utterances,
        StreamKind.SAID: seen.said,
        StreamKind.CONTROL: seen.control,
        StreamKind.TURNS: seen.turns,
        StreamKind.AUDIO: seen.audio,
    }
    try:
        async with (
            consuming(bus, stream_name(SERVER, StreamKind.UTTERANCES), "test", "t", streams[StreamKind.UTTERANCES]),
            consuming(bus, stream_name(SERVER, StreamKind.SAID), "test", "t", streams[StreamKind.SAID]),
            consuming(bus, stream_name(SERVER, StreamKind.CONTROL), "test", "t", streams[StreamKind.CONTROL]),
            consuming(bus, stream_name(SERVER, StreamKind.TURNS), "test", "t", streams[StreamKind.TURNS]),
            consuming(bus, stream_name(SERVER, StreamKind.AUDIO), "test", "t", streams[StreamKind.AUDIO]),
        ):
            yield bus, seen
    finally:
        await bus.aclose()


async def test_players_hear_bram_by_distance_and_side_and_interrupt_him(
    village: Path, hub: tuple[Bus, Hub], redis_url: str, redis_prefix: str
) -> None:
    _, seen = hub
    port = closed_port()
    async with OllamaWireServer(replies=[FIRST_REPLY, SECOND_REPLY]) as ollama:
        env = host_env(
            village,
            NPC_HOST_REDIS_URL=redis_url,
            NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
            NPC_HOST_LLM__BACKEND="ollama",
            NPC_HOST_LLM__OLLAMA_URL=ollama.url,
            NPC_HOST_LLM__RETRIES="0",
            NPC_HOST_BRIDGE_PORT=str(port),
            NPC_HOST_BRIDGE_TOKEN_EXAMPLE=TOKEN,
        )
        host = HostProcess.start(["run"], env, village)
        try:
            await host.wait_output("voice bridge listening", START_S)
            await _scene(f"ws://127.0.0.1:{port}/bridge", seen, host)
            await _first_answer_is_recorded_as_heard(village, seen, host)
        finally:
            host.stop_now()
    assert TOKEN not in host.output()


async def _scene(url: str, seen: Hub, host: HostProcess) -> None:
    players = {name: Player(BridgeClient(url, server=SERVER, token=TOKEN)) for name in ("Alice", "Bob", "Carol")}
    # The recorded question, then the silence after it (the VAD ends the utterance on it).
    question = np.concatenate((recording_48k("bram_room.wav"), np.zeros(SAMPLE_RATE, np.int16)))
    async with asyncio.TaskGroup() as tasks:
        for (name, player), where in zip(players.items(), (ALICE, BOB, CAROL), strict=True):
            welcome = await player.client.connect()
            assert "bram" in [npc.npc for npc in welcome.npcs]
            await player.client.join(0, name, where)
            tasks.create_task(player.listen())
            tasks.create_task(player.keepalive())
        alice, bob, carol = players["Alice"], players["Bob"], players["Carol"]

        # Alice asks Bram; Carol, out of every NPC's hearing range, talks at the same time.
        sequence, _ = await asyncio.gather(
            alice.client.stream_microphone(0, question), carol.client.stream_microphone(0, question)
        )
        await until(lambda: len(alice.streams()) == 1 and len(alice.streams()[0][0]) >= 50, "Bram's voice", host, seen)

        # Alice interrupts him: her speech start silences Bram at once, and what she says is heard as well.
        await alice.client.stream_microphone(0, question, first_sequence=sequence)
        await until(lambda: alice.streams()[0][1] is not None, "Bram stopped", host, seen)
        await until(lambda: len(seen.of(seen.turns, NpcTurnEnded)) == 2, "the second turn ended", host, seen)
        first, second = seen.of(seen.turns, NpcTurnEnded)
        await until(lambda: len(alice.streams()) == 2 and alice.streams()[1][1] is not None, "the answer", host, seen)
        await until(lambda: seen.all_spoken(first.turn_id) and seen.all_spoken(second.turn_id), "all audio", host, seen)
        for player in players.values():
            await player.client.close()

    # Carol was not heard at all (no utterance, no line, no barge-in); Alice was heard twice.
    assert [u.player for u in seen.of(seen.utterances, PlayerUtterance)] == ["Alice", "Alice"]
    said = seen.of(seen.said, PlayerSaid)
    assert [s.player for s in said] == ["Alice", "Alice"] and "room" in said[0].text.lower()
    assert {e.player for e in seen.of(seen.control, PlayerSpeechStarted)} == {"Alice"}
    assert (first.npc, first.player, first.cause_id, second.npc) == ("bram", "Alice", said[0].id, "bram")

    # Alice heard the start of the first answer until she spoke, then the whole second answer and nothing else.
    (heard_first, how_first), (heard_second, how_second) = alice.streams()
    assert (how_first, how_second) == ("stopped", "finished")
    # Stopped while sounding: how much of the reply was synthesised by then is the machine's load to decide (the
    # record of what she heard is checked below); nothing of a turn is heard that was not synthesised for it.
    for heard, turn in ((heard_first, first), (heard_second, second)):
        padding = len(seen.chunks(turn.turn_id))  # each sentence's last frame is padded
        assert len(heard) <= seen.audio_s(turn.turn_id) * 1000 / FRAME_MS + padding

    # Bram is on Alice's right and on Carol's left, each at the level of her distance; Bob, too far, got nothing.
    carol_first, how_carol = carol.streams()[0]
    assert how_carol == "stopped"
    common = sorted({f.sequence for f in heard_first} & {f.sequence for f in carol_first})
    a, c = _stereo(heard_first, common), _stereo(carol_first, common)
    assert rms(a[:, 1]) > 300.0  # not silence
    assert rms(a[:, 1]) > 100 * max(rms(a[:, 0]), 1.0)
    assert rms(c[:, 0]) > 100 * max(rms(c[:, 1]), 1.0)
    assert rms(a[:, 1]) / rms(c[:, 0]) == pytest.approx(linear_gain(ALICE) / linear_gain(CAROL), rel=0.05)
    # (A plugin hears of every NPC stream, for its other players; Bob's own mix stays empty.)
    assert bob.frames() == [] and len(bob.streams()) == 2


async def _first_answer_is_recorded_as_heard(village: Path, seen: Hub, host: HostProcess) -> None:
    """The reply was written long before Alice cut it off: the record keeps only what she heard, marked interrupted."""
    first = seen.of(seen.turns, NpcTurnEnded)[0]
    await until(lambda: bool(seen.of(seen.control, NpcTurnCut)), "the cut announced", host, seen)
    (cut,) = seen.of(seen.control, NpcTurnCut)
    assert (cut.turn_id, cut.npc, cut.player) == (first.turn_id, "bram", "Alice")
    assert cut.sentences_heard < 3 and first.reply.startswith(cut.heard) and len(cut.heard) < len(first.reply)

    def recorded() -> list[SpokenLine]:
        lines = []
        for path in (village / "transcripts" / SERVER).glob("*.log"):
            lines += [p.line for p in parse_bytes(path.read_bytes(), path).lines if isinstance(p.line, SpokenLine)]
        return [line for line in lines if line.tags.get("turn") == first.turn_id and "interrupted" in line.tags]

    await until(lambda: bool(recorded()), "the cut in the transcript", host, seen)
    assert recorded()[0].text == cut.heard


def _stereo(frames: list[Frame], sequences: list[int]) -> Int16Array:
    by_sequence = {frame.sequence: frame for frame in frames}
    pcm = b"".join(by_sequence[s].pcm for s in sequences)
    return pcm16_to_int16(pcm).reshape(-1, 2)
