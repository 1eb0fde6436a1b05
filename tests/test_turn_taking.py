"""Turn-taking on a question said in two breaths (`comma_pause.wav`: "Bram, when the bell rings tonight," - 0.3 s -
"should we shut the gate?"), played into the real bridge by the reference plugin in real time, its utterances and
speech starts carried over the in-process hub to the speech role's STT step with real Whisper.

The VAD's end silence (400 ms) ends the first breath as an utterance of its own; the host must still not answer
the half question: it sounds unfinished, the player goes on within the hold, and the two become one line."""

from __future__ import annotations

import asyncio
import time

import pytest

from host.bus import MemoryBus, StreamKind, stream_for, stream_name
from host.demo_assets import load_manifest
from host.events import PlayerSaid, PlayerSpeechStarted
from host.profiles.schema import TurnTakingSpec
from host.speech.audio import without_trailing_silence
from host.speech.stt import WhisperTranscriber, word_error_rate
from host.speech.stt_worker import TranscriptionHandler
from host.speech.turn_taking import finished_wait_ms, sounds_unfinished
from proximity_audio.world import SpatialWorld
from tests.bridge_support import at, client, eventually, recording_48k, running_bridge
from tests.bus_support import TEST_BUS_SETTINGS, Collector, consuming

WAIT_S = 600.0  # Whisper on a crowded 2-core machine: a bound, never a speed check
VILLAGE_NAMES = ("Bram", "Hilde", "Old Birch")
HOLD_S = 0.6


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


@pytest.mark.parametrize(
    ("line", "unfinished"),
    [
        ("Bram, do you have a room for the night?", False),
        ("Hilde, is the road to the mine safe.", False),
        ("When the bell rings, close the gate.", False),
        ("Bram, when the bell rings tonight.", True),  # Whisper's period after the first breath
        ("Bram, when the bell rings tonight,", True),
        ("I want a room and", True),
        ("Can I leave my horse with", True),
        ("So I was thinking...", True),
        ("", False),
    ],
)
def test_what_sounds_unfinished(line: str, unfinished: bool) -> None:
    assert sounds_unfinished(line) is unfinished


@pytest.mark.parametrize(
    ("line", "wait_ms"),
    [
        ("Bram, do you have a room for the night?", 256),
        ("Hilde, watch out for the wolves!", 256),
        ("Hilde, is the road to the mine safe.", 320),
        ("When the bell rings, close the gate.", 320),
        ("Bram, when the bell rings tonight.", None),  # the first breath of a longer question
        ("Bram, when the bell rings tonight,", None),
        ("I want a room and", None),
        ("So I was thinking...", None),
        ("Bram.", None),  # a name and a pause: the player nearly always goes on
        ("Brand?", None),
        ("Hilde. Hilde. Hilde.", None),  # Whisper's way of hearing "Hilde," before a pause
        ("", None),
    ],
)
def test_how_soon_a_finished_line_ends(line: str, wait_ms: int | None) -> None:
    assert finished_wait_ms(line, TurnTakingSpec(question_end_ms=256, sentence_end_ms=320)) == wait_ms


def entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


async def heard_lines(transcriber: WhisperTranscriber, hold_s: float) -> list[PlayerSaid]:
    """Alice says the comma-pause question next to Bram; the lines the speech role's STT step publishes."""
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    bus = MemoryBus(TEST_BUS_SETTINGS)
    starts: list[PlayerSpeechStarted] = []

    def spoke_since(_server: str, player: str, ts: float) -> bool:
        return any(start.player == player and start.ts > ts for start in starts)

    handler = TranscriptionHandler(
        bus,
        transcriber,
        vocabulary=lambda _: VILLAGE_NAMES,
        hold_for=lambda said: hold_s if sounds_unfinished(said.text) else 0.0,
        spoke_since=spoke_since,
    )
    said = Collector()
    speech = without_trailing_silence(recording_48k("comma_pause.wav"))
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.stream_microphone(0, speech)  # in real time, then nothing
        await eventually(lambda: server.stats.utterances_heard == 2, within_s=WAIT_S)
    starts.extend(heard.starts)
    utterances = stream_name("survival", StreamKind.UTTERANCES)
    said_stream = stream_name("survival", StreamKind.SAID)
    async with (
        consuming(bus, utterances, "speech", "s1", handler),
        consuming(bus, said_stream, "brain", "b1", said),
    ):
        # What the gateway publishes; the speech starts reach the speech role on the control stream.
        last = ""
        for event in [*heard.pauses, *heard.utterances]:
            last = await bus.publish(stream_for(event), event)

        async def idle() -> bool:
            groups = [group for group in (await bus.stream_info(utterances)).groups if group.name == "speech"]
            if not groups or groups[0].pending or entry_order(groups[0].last_delivered_id) < entry_order(last):
                return False
            # Every line the handler published has reached the brain's side.
            return not handler.holding and len(said.events) == (await bus.stream_info(said_stream)).length

        deadline = time.monotonic() + WAIT_S
        while not await idle():
            assert time.monotonic() < deadline, "the utterances were never handled"
            await asyncio.sleep(0.05)
    await handler.aclose()
    await bus.aclose()
    return [event for event in said.events if isinstance(event, PlayerSaid)]


async def test_a_question_with_a_comma_pause_is_answered_whole(transcriber: WhisperTranscriber) -> None:
    question = load_manifest().get("comma_pause.wav").text
    (line,) = await heard_lines(transcriber, HOLD_S)
    assert word_error_rate(question, line.text) <= 0.2, line.text


async def test_without_a_hold_the_half_question_is_a_line_of_its_own(transcriber: WhisperTranscriber) -> None:
    first, second = await heard_lines(transcriber, 0.0)
    assert word_error_rate("Bram, when the bell rings tonight", first.text) <= 0.2, first.text
    assert word_error_rate("should we shut the gate?", second.text) <= 0.2, second.text
