"""The in-process voice turn (`host/voice/pipeline.py`) on real Silero, Whisper and Piper, with the Ollama wire double
as the LLM so the replies are known: recorded speech in, the NPC's audio out, barge-in, typed lines, silence."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from host.config import LLMSettings, Settings
from host.demo_assets import load_manifest
from host.events import Position
from host.llm.factory import close_all
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.speech.audio import WHISPER_RATE, Int16Array, conform, pcm16_to_int16, read_wav, rms_dbfs
from host.speech.stt import WhisperTranscriber, word_error_rate
from host.speech.tts import PiperSynthesizer
from host.voice.exchange import VoiceExchange
from host.voice.pipeline import VoicePipeline
from tests.doubles.ollama_server import OllamaWireServer, split_into_pieces

SERVER = "example"
NEXT_TO_BRAM = Position(x=6.0, y=64.0, z=-3.5)
SLOW_REPLY = [
    "Aye, friend.",
    *split_into_pieces(" The rooms upstairs are warm and dry, three emeralds with breakfast."),
]
REPLY = "[happy] Aye, one room left upstairs. Three emeralds a night, friend!"

OpenPipeline = Callable[..., AbstractAsyncContextManager[tuple[VoicePipeline, OllamaWireServer]]]


@pytest.fixture(scope="session")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


@pytest.fixture
def open_pipeline(tmp_path: Path, repo_root: Path, transcriber: WhisperTranscriber) -> OpenPipeline:
    shutil.copytree(repo_root / "npc_profiles" / SERVER, tmp_path / "profiles" / SERVER)

    @asynccontextmanager
    async def opened(
        replies: Sequence[str | Sequence[str]], chunk_delay_s: float = 0.0
    ) -> AsyncIterator[tuple[VoicePipeline, OllamaWireServer]]:
        async with OllamaWireServer(replies=replies, chunk_delay_s=chunk_delay_s) as ollama:
            settings = Settings(
                profiles_dir=tmp_path / "profiles",
                data_dir=tmp_path / "data",
                transcripts_dir=tmp_path / "transcripts",
                llm=LLMSettings(backend="ollama", ollama_url=ollama.url, retries=0),
            )
            services = await HostServices.open(settings, watch_profiles=False)
            brain = make_brain(services)
            pipeline = VoicePipeline(brain, transcriber, PiperSynthesizer(), SERVER, realtime=False)
            try:
                yield pipeline, ollama
            finally:
                await services.aclose()
                await close_all()

    return opened


def recorded(file: str, trailing_silence_s: float = 0.8) -> Int16Array:
    samples = conform(read_wav(load_manifest().get(file).path), WHISPER_RATE)
    return np.concatenate((samples, np.zeros(int(trailing_silence_s * WHISPER_RATE), dtype=np.int16)))


def assert_audible(exchange: VoiceExchange) -> None:
    assert exchange.sample_rate == 22050
    assert rms_dbfs(pcm16_to_int16(exchange.audio)) > -35.0


def assert_stages_in_order(exchange: VoiceExchange) -> None:
    t = exchange.timings
    marks = [t.origin, t.endpoint, t.transcript, t.first_token, t.first_sentence, t.first_audio]
    assert None not in marks, marks
    assert marks == sorted(marks), marks  # type: ignore[type-var]


async def test_a_recorded_question_is_answered_aloud_with_every_stage_timed(open_pipeline: OpenPipeline) -> None:
    async with open_pipeline([REPLY]) as (pipeline, ollama):
        (exchange,) = await pipeline.listen("Alice", NEXT_TO_BRAM, recorded("bram_room.wav"))

    assert exchange.npc.id == "bram"
    assert word_error_rate(load_manifest().get("bram_room.wav").text, exchange.heard) <= 0.2
    assert exchange.said.source == "voice" and exchange.transcript is not None
    assert exchange.reply == "Aye, one room left upstairs. Three emeralds a night, friend!"
    assert (exchange.interrupted, exchange.sentences_said, exchange.sentences_planned) == (False, 2, 2)
    assert_audible(exchange)
    assert_stages_in_order(exchange)
    report = exchange.timings.since_origin()
    assert report["end_of_speech_to_first_audio"] == report["first_audio"]
    assert None not in report.values()
    assert exchange.heard in ollama.chat_bodies[0]["messages"][-2]["content"]  # the line, before the reminder


async def test_a_second_question_cuts_the_npc_off(open_pipeline: OpenPipeline) -> None:
    async with open_pipeline([SLOW_REPLY, REPLY], chunk_delay_s=0.3) as (pipeline, _):
        first, second = await pipeline.listen("Bob", NEXT_TO_BRAM, recorded("two_questions.wav"))

    questions = load_manifest().get("two_questions.wav").utterances
    assert word_error_rate(questions[0], first.heard) <= 0.2
    assert word_error_rate(questions[1], second.heard) <= 0.2
    assert (first.npc.id, second.npc.id) == ("bram", "bram")
    # Bram had said his first sentence when Bob spoke again; the second one was never spoken.
    assert first.interrupted
    assert (first.reply, first.sentences_said) == ("Aye, friend.", 1)
    assert_audible(first)
    assert not second.interrupted
    assert second.sentences_said == 2
    assert_audible(second)


async def test_a_typed_line_is_answered_aloud(open_pipeline: OpenPipeline) -> None:
    async with open_pipeline([REPLY]) as (pipeline, _):
        (exchange,) = await pipeline.type("Alice", NEXT_TO_BRAM, "Bram, any rooms free?")

    assert (exchange.npc.id, exchange.said.source, exchange.transcript) == ("bram", "chat", None)
    assert_audible(exchange)
    report = exchange.timings.since_origin()
    assert report["stt"] is None and report["end_of_speech_to_first_audio"] is None
    assert report["first_audio"] is not None


async def test_silence_makes_no_turn(open_pipeline: OpenPipeline) -> None:
    async with open_pipeline([REPLY]) as (pipeline, ollama):
        exchanges = await pipeline.listen("Alice", NEXT_TO_BRAM, np.zeros(2 * WHISPER_RATE, dtype=np.int16))

    assert exchanges == []
    assert ollama.chat_bodies == []
