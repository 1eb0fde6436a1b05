"""Speculative persona turns on the live path: the speech and brain roles on the in-process hub, a player's pause
(`PlayerPaused`) transcribed by real Whisper before the utterance ends, the answer started on that transcript and
held back, then committed when the utterance ends with the same words, or discarded without a trace when the player
went on speaking.

The LLM is the Ollama wire double (a real HTTP server on 127.0.0.1) through the real Ollama backend: each chat request
takes the next scripted reply, so `chat_bodies` counts the generations. Bram stands at (4.5, 64, -3.5) and hears 10
blocks; at the bar only he does.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from host import metrics
from host.bus import Bus, StreamKind, stream_for, stream_name
from host.config import LLMSettings, Settings
from host.demo_assets import load_manifest
from host.events import (
    Event,
    NpcSentence,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerPaused,
    PlayerSaid,
    PlayerSaidTentative,
    PlayerSpeechStarted,
    PlayerUtterance,
    Position,
)
from host.llm.factory import close_all
from host.roles.brain import BrainRole
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.roles.speech import SpeechRole
from host.speech.audio import WHISPER_RATE, conform, int16_to_pcm16, read_wav
from host.store import ConversationKey
from tests.bus_support import Collector, consuming, wait_until
from tests.doubles.ollama_server import OllamaWireServer, split_into_pieces

SERVER = "example"
AT_THE_BAR = Position(x=4.5, y=64.0, z=-2.5)
REPLY = "[happy] Aye, one room left upstairs. Three emeralds a night, friend!"
REPLY_SENTENCES = ["Aye, one room left upstairs.", "Three emeralds a night, friend!"]
# Written for a line the player then went on with: none of it may be published, stored, remembered or written.
UNSAID = "Porridge and plum wine tonight. The cellar door sticks."
# Streamed slowly, so a discard meets it mid-generation.
UNSAID_PIECES = ["Porridge and plum wine tonight.", *split_into_pieces(" The cellar door sticks.")]


@dataclass
class Village:
    bus: Bus
    brain: BrainRole
    ollama: OllamaWireServer
    said: Collector
    turns: Collector
    transcripts_dir: Path

    async def publish(self, event: Event) -> str:
        return await self.bus.publish(stream_for(event), event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in [*self.said.events, *self.turns.events] if isinstance(event, kind)]

    async def turn_ended(self) -> NpcTurnEnded:
        await wait_until(lambda: bool(self.of(NpcTurnEnded)), "a turn ended")
        (ended,) = self.of(NpcTurnEnded)
        assert isinstance(ended, NpcTurnEnded)
        return ended

    async def generating(self, count: int) -> None:
        await wait_until(lambda: len(self.ollama.chat_bodies) >= count, f"{count} generation(s) started")

    def transcript_text(self) -> str:
        return "".join(path.read_text() for path in sorted((self.transcripts_dir / SERVER).glob("*.log")))

    async def stored_replies(self) -> list[str]:
        """Bram's replies to Alice in the database, then in his memory."""
        key = ConversationKey(server=SERVER, npc="bram", player="Alice")
        stored = await self.brain.services.store.conversations.recent_exchanges(key)
        memory = await self.brain.brain.memory.conversation(key)
        return [exchange.npc_reply for exchange in stored] + [exchange.npc_reply for exchange in memory.exchanges]


OpenVillage = Callable[..., AbstractAsyncContextManager[Village]]


@pytest.fixture
def open_village(tmp_path: Path, repo_root: Path) -> OpenVillage:
    shutil.copytree(repo_root / "npc_profiles" / SERVER, tmp_path / "profiles" / SERVER)

    @asynccontextmanager
    async def opened(replies: Sequence[str | Sequence[str]], chunk_delay_s: float = 0.0) -> AsyncIterator[Village]:
        async with OllamaWireServer(replies=replies, chunk_delay_s=chunk_delay_s) as ollama:
            settings = Settings(
                profiles_dir=tmp_path / "profiles",
                data_dir=tmp_path / "data",
                transcripts_dir=tmp_path / "transcripts",
                llm=LLMSettings(backend="ollama", ollama_url=ollama.url, retries=0),
            )
            services = await HostServices.open(settings, watch_profiles=False)
            services.first_audio.wait_s = 600.0  # the safety cap is for a voice that fails; none does here
            brain = BrainRole(services, make_brain(services))
            speech = SpeechRole(services)
            village = Village(services.bus, brain, ollama, Collector(), Collector(), settings.transcripts_dir)
            stop = asyncio.Event()
            try:
                async with (
                    consuming(services.bus, stream_name(SERVER, StreamKind.SAID), "o", "o1", village.said),
                    consuming(services.bus, stream_name(SERVER, StreamKind.TURNS), "o", "o1", village.turns),
                ):
                    tasks = [asyncio.create_task(role.run(stop)) for role in (brain, speech)]
                    try:
                        await speech.ready()
                        yield village
                    finally:
                        stop.set()
                        async with asyncio.timeout(30):
                            await asyncio.gather(*tasks)
            finally:
                await services.aclose()
                await close_all()

    return opened


def recording(file: str) -> bytes:
    return int16_to_pcm16(conform(read_wav(load_manifest().get(file).path), WHISPER_RATE))


SPEECH_END = time.time()  # when the recordings "stopped": the origin of the after-speech timings


def paused(utterance_id: str, audio: bytes) -> PlayerPaused:
    return PlayerPaused(
        server=SERVER,
        player="Alice",
        utterance_id=utterance_id,
        position=AT_THE_BAR,
        audio=audio,
        speech_end_ts=SPEECH_END,
    )


def ended_utterance(utterance_id: str, audio: bytes) -> PlayerUtterance:
    return PlayerUtterance(
        id=utterance_id, server=SERVER, player="Alice", position=AT_THE_BAR, audio=audio, speech_end_ts=SPEECH_END
    )


def outcomes(outcome: str) -> float:
    return metrics.SPECULATIVE_TURNS_TOTAL.labels(server=SERVER, npc="bram", outcome=outcome)._value.get()


async def test_a_pause_that_ends_the_question_gets_the_answer_written_during_the_wait(
    open_village: OpenVillage,
) -> None:
    audio = recording("bram_room.wav")
    committed = outcomes("committed")
    async with open_village([REPLY, "A second answer nobody should hear."]) as village:
        await village.publish(paused("u-room", audio))
        await village.generating(1)  # Bram is writing before the utterance has ended
        (tentative,) = village.of(PlayerSaidTentative)
        assert village.of(NpcTurnStarted) == [] and village.of(NpcSentence) == []
        assert await village.stored_replies() == [] and village.transcript_text() == ""
        ahead = village.brain.services.speech_ahead
        await wait_until(lambda: ahead.prepared == 1, "the held first sentence's speech is being made")

        await village.publish(ended_utterance("u-room", audio))
        ended = await village.turn_ended()
        assert ahead.prepared == 0  # the speech made ahead is what was spoken

        (said,) = village.of(PlayerSaid)
        assert isinstance(said, PlayerSaid) and isinstance(tentative, PlayerSaidTentative)
        assert said.text == tentative.text
        assert len(village.ollama.chat_bodies) == 1  # the speculative generation is the answer: nothing ran twice
        assert (ended.cause_id, ended.reply, ended.interrupted) == (said.id, " ".join(REPLY_SENTENCES), False)
        assert [e.text for e in village.of(NpcSentence) if isinstance(e, NpcSentence)] == REPLY_SENTENCES
        (started,) = village.of(NpcTurnStarted)
        assert isinstance(started, NpcTurnStarted) and started.turn_id == ended.turn_id
        await wait_until(lambda: ended.reply in village.transcript_text(), "the turn was written")
        assert await village.stored_replies() == [ended.reply, ended.reply]  # database and memory, once each
        assert outcomes("committed") == committed + 1

        # The turn's timings, from the end of the speech: written before the endpoint, published after it.
        timings = ended.timings_ms
        assert timings["first_token_after_speech"] < timings["endpoint_after_speech"]
        assert timings["endpoint_after_speech"] <= timings["first_sentence_after_speech"]
        assert timings["first_sentence_after_speech"] < timings["first_audio_after_speech"]
        line = next(line for line in village.transcript_text().splitlines() if " npc bram " in line)
        assert "first_audio_after_speech_ms=" in line and "endpoint_after_speech_ms=" in line


async def test_a_player_who_went_on_speaking_leaves_no_trace_of_the_answer_started_on_the_pause(
    open_village: OpenVillage,
) -> None:
    first_part = recording("bram_room.wav")
    whole = first_part + recording("birch_age.wav")  # the player went on: the utterance ends later, with more words
    discarded = outcomes("discarded")
    async with open_village([UNSAID_PIECES, REPLY], chunk_delay_s=0.3) as village:
        await village.publish(paused("u-more", first_part))
        await village.generating(1)

        await village.publish(ended_utterance("u-more", whole))
        ended = await village.turn_ended()

        (said,) = village.of(PlayerSaid)
        (tentative,) = village.of(PlayerSaidTentative)
        assert isinstance(said, PlayerSaid) and isinstance(tentative, PlayerSaidTentative)
        assert said.text != tentative.text
        assert len(village.ollama.chat_bodies) == 2  # the final line was answered afresh
        assert ended.reply == " ".join(REPLY_SENTENCES)
        assert len(village.of(NpcTurnStarted)) == 1
        assert [e.text for e in village.of(NpcSentence) if isinstance(e, NpcSentence)] == REPLY_SENTENCES
        await wait_until(lambda: ended.reply in village.transcript_text(), "the turn was written")
        assert "Porridge" not in village.transcript_text()
        assert tentative.text not in village.transcript_text().replace(said.text, "")
        assert await village.stored_replies() == [ended.reply, ended.reply]
        assert outcomes("discarded") == discarded + 1


async def test_a_player_speaking_again_discards_the_answer_started_on_their_pause(open_village: OpenVillage) -> None:
    """The speculative answer writes its first sentence and waits there: discarded, it cost that sentence only."""
    discarded = outcomes("discarded")
    async with open_village([UNSAID + " Mind the third step."]) as village:
        line = "Any rooms free tonight?"
        tentative = PlayerSaidTentative(server=SERVER, player="Alice", text=line, utterance_id="u1")
        await village.publish(tentative.model_copy(update={"position": AT_THE_BAR}))
        await wait_until(lambda: village.brain.brain.speculations.of(SERVER, "Alice") is not None, "Bram speculates")
        speculation = village.brain.brain.speculations.of(SERVER, "Alice")
        assert speculation is not None
        await wait_until(lambda: speculation.gate.held == 1, "Bram's first sentence is written and held")
        ahead = village.brain.services.speech_ahead
        await wait_until(lambda: ahead.prepared == 1, "the held sentence's speech is being made")
        await village.publish(PlayerSpeechStarted(server=SERVER, player="Alice", position=AT_THE_BAR))
        await wait_until(lambda: outcomes("discarded") == discarded + 1, "the speculative turn was discarded")
        await wait_until(speculation.task.done, "the discarded turn stopped")

        result = speculation.turn.persona.result
        assert result is not None and result.outcome == "interrupted"
        assert [sentence.text for sentence in result.sentences] == ["Porridge and plum wine tonight."]
        assert len(village.brain.brain.speculations) == 0
        assert ahead.prepared == 0  # its speech is no longer being made
        assert village.of(NpcTurnStarted) == [] and village.of(NpcSentence) == []
        assert await village.stored_replies() == []
        assert village.transcript_text() == ""
