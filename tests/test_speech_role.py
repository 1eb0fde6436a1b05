"""The speech role with the brain role on the in-process hub: a recorded question is transcribed and answered aloud,
the first sentence is heard while the reply is still being written, and a turn the bridge cut (barge-in) goes
silent.

Real Whisper and Piper; the LLM is the Ollama wire double (a real HTTP server on 127.0.0.1) through the real Ollama
backend, so replies are known in advance. Bram stands at (4.5, 64, -3.5) and hears 10 blocks; at the bar only he does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from host.bus import Bus, StreamKind, stream_for, stream_name
from host.config import LLMSettings, Settings
from host.demo_assets import load_manifest
from host.events import (
    Event,
    NpcAudio,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerLeft,
    PlayerSaid,
    PlayerSpeechStarted,
    PlayerUtterance,
    Position,
)
from host.llm.factory import close_all
from host.packaged_models import piper_joe_paths
from host.profiles.loader import load_all
from host.roles.brain import BrainRole
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.roles.speech import GROUP as SPEECH_GROUP
from host.roles.speech import SpeechRole
from host.speech.audio import WHISPER_RATE, conform, int16_to_pcm16, pcm16_to_int16, read_wav, rms_dbfs
from host.speech.stt import word_error_rate
from host.voice.hearing import names_in_earshot
from tests.bus_support import Collector, consuming, poll_until, wait_until
from tests.doubles.ollama_server import OllamaWireServer, split_into_pieces

SERVER = "example"
AT_THE_BAR = Position(x=4.5, y=64.0, z=-2.5)
SQUARE = Position(x=-1.0, y=64.0, z=6.0)  # by the tree, towards the gate: Birch and Hilde hear it, Bram not
REPLY = "[happy] Aye, one room left upstairs. Three emeralds a night, friend!"
# A short first sentence, then a long one that takes the double seconds to stream.
SLOW_REPLY = [
    "Aye, friend.",
    *split_into_pieces(" The rooms upstairs are warm and dry, three emeralds with breakfast."),
]


@dataclass
class Village:
    """Brain and speech roles running on the example village, with observers of the said, turns and audio streams."""

    bus: Bus
    speech: SpeechRole
    said: Collector
    turns: Collector
    audio: Collector

    async def publish(self, event: Event) -> str:
        return await self.bus.publish(stream_for(event), event)

    async def handled(self, entry_id: str) -> None:
        """Until the speech role has been handed the turns entry `entry_id` and acked everything it was handed."""
        stream = stream_name(SERVER, StreamKind.TURNS)

        async def done() -> bool:
            info = await self.bus.stream_info(stream)
            group = next((g for g in info.groups if g.name == SPEECH_GROUP), None)
            return group is not None and group.pending == 0 and _id(group.last_delivered_id) >= _id(entry_id)

        await poll_until(done, f"the speech role handled entry {entry_id}")

    async def turn_ended(self) -> NpcTurnEnded:
        await wait_until(lambda: bool(self.ended()), "a turn ended")
        (ended,) = self.ended()
        return ended

    def ended(self) -> list[NpcTurnEnded]:
        return [event for event in self.turns.events if isinstance(event, NpcTurnEnded)]

    def sentences(self, turn_id: str) -> list[NpcSentence]:
        return [e for e in self.turns.events if isinstance(e, NpcSentence) and e.turn_id == turn_id]

    def all_chunks(self) -> list[NpcAudio]:
        return [event for event in self.audio.events if isinstance(event, NpcAudio)]

    def chunks(self, turn_id: str) -> list[NpcAudio]:
        return [chunk for chunk in self.all_chunks() if chunk.turn_id == turn_id]

    def spoken(self, turn_id: str, index: int) -> bool:
        return any(chunk.index == index and chunk.final for chunk in self.chunks(turn_id))


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


OpenVillage = Callable[..., AbstractAsyncContextManager[Village]]


@pytest.fixture
def open_village(tmp_path: Path, repo_root: Path) -> OpenVillage:
    shutil.copytree(repo_root / "npc_profiles" / SERVER, tmp_path / "profiles" / SERVER)

    @asynccontextmanager
    async def opened(
        replies: Sequence[str | Sequence[str]],
        chunk_delay_s: float = 0.0,
        *,
        brain: bool = True,
        before_start: Callable[[], None] = lambda: None,
    ) -> AsyncIterator[Village]:
        async with OllamaWireServer(replies=replies, chunk_delay_s=chunk_delay_s) as ollama:
            settings = Settings(
                profiles_dir=tmp_path / "profiles",
                data_dir=tmp_path / "data",
                transcripts_dir=tmp_path / "transcripts",
                llm=LLMSettings(backend="ollama", ollama_url=ollama.url, retries=0),
            )
            services = await HostServices.open(settings, watch_profiles=False)
            before_start()
            speech = SpeechRole(services)
            village = Village(services.bus, speech, Collector(), Collector(), Collector())
            try:
                async with (
                    consuming(services.bus, stream_name(SERVER, StreamKind.SAID), "o", "o1", village.said),
                    consuming(services.bus, stream_name(SERVER, StreamKind.TURNS), "o", "o1", village.turns),
                    consuming(services.bus, stream_name(SERVER, StreamKind.AUDIO), "o", "o1", village.audio),
                    running(speech, *([BrainRole(services, make_brain(services))] if brain else [])),
                ):
                    yield village
            finally:
                await services.aclose()
                await close_all()

    return opened


@asynccontextmanager
async def running(*roles: BrainRole | SpeechRole) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(role.run(stop)) for role in roles]
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)


def utterance(file: str, position: Position) -> PlayerUtterance:
    recording = load_manifest().get(file)
    samples = conform(read_wav(recording.path), WHISPER_RATE)
    return PlayerUtterance(server=SERVER, player=recording.player, position=position, audio=int16_to_pcm16(samples))


async def test_a_recorded_question_near_bram_is_heard_and_answered_aloud(open_village: OpenVillage) -> None:
    async with open_village([REPLY]) as village:
        await village.publish(utterance("bram_room.wav", AT_THE_BAR))
        ended = await village.turn_ended()
        await wait_until(lambda: village.spoken(ended.turn_id, 1), "Bram's second sentence was spoken")

    (said,) = village.said.events
    assert isinstance(said, PlayerSaid)
    assert (said.player, said.source, said.position) == ("Alice", "voice", AT_THE_BAR)
    assert word_error_rate(load_manifest().get("bram_room.wav").text, said.text) <= 0.2
    assert (ended.npc, ended.cause_id, ended.interrupted) == ("bram", said.id, False)

    chunks = village.chunks(ended.turn_id)
    assert sorted({chunk.index for chunk in chunks}) == [0, 1]
    assert [chunk.index for chunk in chunks] == sorted(chunk.index for chunk in chunks)  # sentences in order
    for index in (0, 1):
        pcm = b"".join(chunk.audio for chunk in chunks if chunk.index == index)
        assert rms_dbfs(pcm16_to_int16(pcm)) > -35.0, f"sentence {index} is silent"
    assert {chunk.sample_rate for chunk in chunks} == {22050}
    assert {chunk.npc for chunk in chunks} == {"bram"}


async def test_the_first_sentence_is_heard_before_the_reply_is_written(open_village: OpenVillage) -> None:
    async with open_village([SLOW_REPLY], chunk_delay_s=0.15) as village:
        await village.publish(PlayerSaid(server=SERVER, player="Alex", text="Any rooms?", position=AT_THE_BAR))
        ended = await village.turn_ended()
        await wait_until(lambda: village.spoken(ended.turn_id, 1), "the second sentence was spoken")

    first_audio = village.chunks(ended.turn_id)[0]
    _, last = village.sentences(ended.turn_id)
    assert first_audio.index == 0
    # The last sentence only exists once the LLM stream ended; the first one was already audible by then.
    assert first_audio.ts < last.ts < ended.ts


async def test_the_next_sentence_waits_until_the_first_sentences_audio_is_out(open_village: OpenVillage) -> None:
    """The double writes the whole reply at once: without the wait the brain would hand out sentence 2 while Piper
    is still making sentence 1 on the same cores."""
    async with open_village([REPLY]) as village:
        village.speech.services.first_audio.wait_s = 600.0  # the safety cap is for a voice that fails; none does here
        await village.publish(PlayerSaid(server=SERVER, player="Alex", text="Any rooms?", position=AT_THE_BAR))
        ended = await village.turn_ended()
        await wait_until(lambda: village.spoken(ended.turn_id, 1), "the second sentence was spoken")

    first, second = village.sentences(ended.turn_id)
    first_audio = village.chunks(ended.turn_id)[0]
    assert first_audio.index == 0
    assert first.ts < first_audio.ts < second.ts
    assert 0 < ended.timings_ms["first_sentence"] < ended.timings_ms["first_audio"] <= ended.timings_ms["total"]


async def test_barge_in_stops_the_npc_and_drops_its_pending_sentences(open_village: OpenVillage) -> None:
    async with open_village([SLOW_REPLY], chunk_delay_s=0.3) as village:
        said = PlayerSaid(server=SERVER, player="Alex", text="Any rooms?", position=AT_THE_BAR)
        await village.publish(said)
        await wait_until(lambda: any(chunk.final for chunk in village.all_chunks()), "Bram's first sentence was spoken")
        (started,) = [event for event in village.turns.events if isinstance(event, NpcTurnStarted)]
        await village.publish(cut(started.turn_id, "Aye, friend."))  # the bridge's barge-in: Alex spoke over Bram
        ended = await village.turn_ended()

    assert ended.interrupted
    assert ended.reply == "Aye, friend."
    assert {chunk.index for chunk in village.chunks(ended.turn_id)} == {0}
    assert [sentence.index for sentence in village.sentences(ended.turn_id)] == [0]


def test_whisper_is_told_the_names_of_the_npcs_in_earshot(repo_root: Path) -> None:
    (village,) = load_all(repo_root / "npc_profiles")
    npcs = village.npcs.values()
    assert names_in_earshot(npcs, SERVER, "Alex", AT_THE_BAR) == ["Bram"]
    assert names_in_earshot(npcs, SERVER, "Alex", SQUARE) == ["Old Birch", "Hilde"]
    assert sorted(names_in_earshot(npcs, SERVER, "Alex", None)) == ["Bram", "Hilde", "Old Birch"]
    far = Position(x=300.0, y=64.0, z=300.0)
    assert names_in_earshot(npcs, SERVER, "Alex", far) == []


LONG = "The rooms upstairs are warm and dry, and the stew is hot, and the cider is cold, and the beds are soft enough."


def sentence(index: int, turn_id: str = "t1", player: str = "Alex") -> NpcSentence:
    return NpcSentence(server=SERVER, npc="bram", player=player, turn_id=turn_id, index=index, text=LONG)


def cut(turn_id: str, heard: str = "") -> NpcTurnCut:
    """What the voice bridge announces when a player speaks over the NPC answering them (host/roles/bridge.py)."""
    return NpcTurnCut(
        server=SERVER, npc="bram", player="Alex", turn_id=turn_id, heard=heard, sentences_heard=1 if heard else 0
    )


def ended_event(turn_id: str, *, interrupted: bool, player: str = "Alex") -> NpcTurnEnded:
    return NpcTurnEnded(
        server=SERVER, npc="bram", player=player, turn_id=turn_id, cause_id="c", reply=LONG, interrupted=interrupted
    )


async def test_after_a_barge_in_nothing_more_is_spoken_for_that_turn(open_village: OpenVillage) -> None:
    async with open_village([], brain=False) as village:
        await village.publish(NpcTurnStarted(server=SERVER, npc="bram", player="Alex", turn_id="t1", cause_id="c"))
        for index in range(3):
            await village.publish(sentence(index))
        await wait_until(lambda: village.spoken("t1", 0), "the first sentence was spoken")
        await village.publish(cut("t1", LONG))
        await wait_until(lambda: "t1" in village.speech.stopped, "the cut was handled")
        assert village.speech.speaking_turns == set()  # the queued sentences 1 and 2 are dropped
        await village.handled(await village.publish(sentence(3)))  # the brain had not noticed yet
        assert village.speech.speaking_turns == set()
        await village.publish(ended_event("t1", interrupted=True))
        # Another player's turn, published after all that, is spoken: the role went on working.
        await village.publish(sentence(0, turn_id="t2", player="Steve"))
        await wait_until(lambda: village.spoken("t2", 0), "Steve's answer was spoken")

    spoken = {chunk.index for chunk in village.chunks("t1")}
    assert 0 in spoken
    assert not spoken & {2, 3}


async def test_a_player_who_left_is_forgotten_at_once(open_village: OpenVillage) -> None:
    async with open_village([], brain=False) as village:
        await village.publish(PlayerSpeechStarted(server=SERVER, player="Alex"))
        await wait_until(lambda: ("example", "Alex") in village.speech.spoke_at, "the speech start was noted")
        await village.publish(PlayerLeft(server=SERVER, player="Alex"))
        await wait_until(lambda: len(village.speech.spoke_at) == 0, "when Alex last spoke was forgotten")


async def test_a_turn_cut_before_its_first_sentence_arrived_stays_silent(open_village: OpenVillage) -> None:
    async with open_village([], brain=False) as village:
        await village.publish(NpcTurnStarted(server=SERVER, npc="bram", player="Alex", turn_id="t1", cause_id="c"))
        await village.publish(cut("t1"))
        await wait_until(lambda: "t1" in village.speech.stopped, "the cut was handled")
        await village.handled(await village.publish(sentence(0)))
        assert village.speech.speaking_turns == set()
        await village.publish(sentence(0, turn_id="t2"))  # Alex's next turn, not cut: spoken
        await wait_until(lambda: village.spoken("t2", 0), "the next turn was spoken")

    assert village.chunks("t1") == []


async def test_a_voice_that_cannot_load_silences_only_its_npc(open_village: OpenVillage, tmp_path: Path) -> None:
    """Hilde's voice file disappears after her profile was checked: her turn is not spoken, Bram's still is."""
    model, config = piper_joe_paths()
    voice = tmp_path / "profiles" / SERVER / "hilde-voice.onnx"
    shutil.copyfile(model, voice)  # a copy, not a link: the loader resolves links to the packaged file
    shutil.copyfile(config, voice.with_name(voice.name + ".json"))
    hilde = tmp_path / "profiles" / SERVER / "hilde.toml"
    hilde.write_text(hilde.read_text().replace("[voice]\n", '[voice]\nmodel = "hilde-voice.onnx"\n', 1))

    def remove_voice() -> None:
        voice.unlink()

    async with open_village([], brain=False, before_start=remove_voice) as village:
        await village.publish(NpcSentence(server=SERVER, npc="hilde", player="Bob", turn_id="h", index=0, text=LONG))
        await village.publish(ended_event("h", interrupted=False, player="Bob"))
        await village.publish(sentence(0, turn_id="b"))
        await village.publish(ended_event("b", interrupted=False))
        await wait_until(lambda: village.spoken("b", 0), "Bram's sentence was spoken")
        await wait_until(lambda: not village.speech.speaking_turns, "both turns are over")

    assert village.chunks("h") == []


async def test_a_barge_in_after_the_reply_was_written_still_silences_the_rest(open_village: OpenVillage) -> None:
    """The LLM finishes long before the reply is heard: a barge-in then must still stop what is not yet spoken."""
    async with open_village([], brain=False) as village:
        await village.publish(NpcTurnStarted(server=SERVER, npc="bram", player="Alex", turn_id="t1", cause_id="c"))
        for index in range(8):
            await village.publish(sentence(index))
        await village.publish(ended_event("t1", interrupted=False))  # the whole reply is written
        await wait_until(lambda: village.spoken("t1", 0), "the first sentence was spoken")
        await village.publish(cut("t1", LONG))
        await wait_until(lambda: "t1" in village.speech.stopped, "the cut was handled")
        assert village.speech.speaking_turns == set()

    spoken = {chunk.index for chunk in village.chunks("t1")}
    assert 0 in spoken
    assert 7 not in spoken
