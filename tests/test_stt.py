"""STT on the packaged tiny.en: the committed recordings, awkward input, hallucination drops, speculation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from host.bus import MemoryBus, StreamKind, stream_for, stream_name
from host.config import STTSettings
from host.demo_assets import load_manifest
from host.events import PlayerSaid, PlayerUtterance
from host.speech.audio import WHISPER_RATE, Int16Array, conform, read_wav, resample, write_wav
from host.speech.speculative import SpeculativeTranscriber
from host.speech.stt import (
    HALLUCINATIONS,
    Transcript,
    TranscriptionError,
    WhisperTranscriber,
    drop_reason,
    normalise_words,
    player_said,
    without_loops,
    word_error_rate,
)
from host.speech.stt_worker import TranscriptionHandler
from host.speech.vad import SilenceStarted, StreamingVad, UtteranceEnded, VadEvent
from host.speech.whisper_window import FULL_WINDOW_FRAMES, MARGIN_FRAMES, fitted_frames
from tests.bus_support import TEST_BUS_SETTINGS, Collector, consuming, wait_until

VILLAGE_NAMES = ("Bram", "Hilde", "Old Birch")


@pytest.fixture(scope="session")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


def recording(file: str) -> Int16Array:
    return conform(read_wav(load_manifest().get(file).path), WHISPER_RATE)


def test_word_error_rate() -> None:
    assert word_error_rate("Bram, do you have a room?", "bram do you have a room") == 0.0
    assert word_error_rate("one two three four", "one too three") == pytest.approx(0.5)
    assert word_error_rate("a b", "a b c d") == pytest.approx(1.0)


@pytest.mark.parametrize("recording_file", [r.file for r in load_manifest().recordings])
async def test_committed_recordings_are_transcribed(transcriber: WhisperTranscriber, recording_file: str) -> None:
    expected = load_manifest().get(recording_file).text
    transcript = await transcriber.transcribe(recording(recording_file), vocabulary=VILLAGE_NAMES)
    assert word_error_rate(expected, transcript.text) <= 0.2, transcript.text
    assert transcript.confidence > 0.5 and transcript.no_speech_prob < 0.5
    assert transcript.dropped is None
    assert transcript.audio_ms == pytest.approx(len(recording(recording_file)) / 16)


async def test_a_fitted_encoder_window_hears_what_the_whole_window_hears() -> None:
    fitted = WhisperTranscriber(STTSettings(encoder_window_s=10.0))
    whole = WhisperTranscriber(STTSettings(encoder_window_s=30.0))
    for item in load_manifest().recordings:
        samples = recording(item.file)
        heard = await fitted.transcribe(samples, vocabulary=VILLAGE_NAMES)
        assert word_error_rate((await whole.transcribe(samples, vocabulary=VILLAGE_NAMES)).text, heard.text) <= 0.1


async def test_speech_longer_than_the_window_is_heard_to_its_last_word() -> None:
    # 13 s of speech against a 5 s window: the window grows with the speech instead of cutting it off.
    files = ("two_questions.wav", "bram_room.wav", "hilde_road.wav", "birch_age.wav")
    gap = np.zeros(WHISPER_RATE // 2, dtype=np.int16)
    samples = np.concatenate([part for file in files for part in (recording(file), gap)])
    assert len(samples) / WHISPER_RATE > 10
    transcript = await WhisperTranscriber(STTSettings(encoder_window_s=5.0)).transcribe(samples)
    assert normalise_words(transcript.text).endswith("how old are you"), transcript.text


@pytest.mark.parametrize(
    ("decoded", "heard"),
    [
        ("Should we shut the gate? Should we shut the gate? Should we shut", "Should we shut the gate?"),
        ("Should we shut the gate? Should we shut the gate?", "Should we shut the gate?"),
        ("Help! Help! Help!", "Help! Help! Help!"),  # short cries are said twice
        ("Is it safe? Is it safe? Tell me.", "Is it safe? Tell me."),
        ("Bram, a room. Bram, a room for two.", "Bram, a room. Bram, a room for two."),
        ("Do you have ale? Do you", "Do you have ale?"),
        ("Are you the smith? Are you?", "Are you the smith? Are you?"),  # a real follow-up ends like one
    ],
)
def test_a_looping_decode_is_heard_once(decoded: str, heard: str) -> None:
    assert without_loops(decoded) == heard


async def test_a_short_question_after_a_pause_is_heard_once(transcriber: WhisperTranscriber) -> None:
    # The second half of comma_pause.wav alone: a fitted encoder window made tiny.en loop on it.
    samples = recording("comma_pause.wav")
    level = np.abs(samples[: len(samples) // 320 * 320].astype(np.int32)).reshape(-1, 320).max(axis=1)
    loud = np.flatnonzero(level >= 300)  # 20 ms frames with speech
    pause_end = loud[np.argmax(np.diff(loud)) + 1]  # the first loud frame after the longest quiet run
    transcript = await transcriber.transcribe(samples[int(pause_end) * 320 - 3072 :])
    assert normalise_words(transcript.text) == "should we shut the gate", transcript.text


def test_the_encoder_window_never_cuts_into_the_speech() -> None:
    features = np.zeros((80, FULL_WINDOW_FRAMES), dtype=np.float32)
    features[:, :250] = -0.5  # 2.5 s of speech, then Whisper's zero padding
    assert fitted_frames(features, 1000) == 1000
    assert fitted_frames(features, 100) == 250 + MARGIN_FRAMES
    features[:, :2990] = -0.5
    assert fitted_frames(features, 1000) == FULL_WINDOW_FRAMES
    assert fitted_frames(features[np.newaxis], 1000) == FULL_WINDOW_FRAMES  # batched as the encoder gets them


async def test_eight_khz_stereo_with_dc_offset_is_transcribed(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    samples = resample(recording("birch_age.wav"), WHISPER_RATE, 8000).astype(np.int32)
    stereo = np.stack([samples + 6000, samples // 2 + 6000], axis=1).clip(-32768, 32767).astype(np.int16)
    write_wav(tmp_path / "phone.wav", stereo, 8000)
    transcript = await transcriber.transcribe(conform(read_wav(tmp_path / "phone.wav"), WHISPER_RATE))
    assert word_error_rate("Old Birch, how old are you?", transcript.text) <= 0.2, transcript.text


async def test_bytes_are_accepted_like_arrays(transcriber: WhisperTranscriber) -> None:
    samples = recording("hilde_road.wav")
    from_bytes = await transcriber.transcribe(samples.tobytes(), vocabulary=VILLAGE_NAMES)
    assert word_error_rate("Hilde, is the road to the mine safe?", from_bytes.text) <= 0.2


@pytest.mark.parametrize("seconds", [0.0, 0.05, 2.0])
async def test_silence_is_empty_without_asking_whisper(transcriber: WhisperTranscriber, seconds: float) -> None:
    transcript = await transcriber.transcribe(np.zeros(int(seconds * WHISPER_RATE), dtype=np.int16))
    assert transcript.empty and transcript.dropped == "silence"


async def test_noise_makes_no_words(transcriber: WhisperTranscriber) -> None:
    noise = np.random.default_rng(3).normal(0, 400, 2 * WHISPER_RATE).astype(np.int16)
    transcript = await transcriber.transcribe(noise)
    assert transcript.empty


def test_every_listed_hallucination_can_match_a_transcript() -> None:
    assert all(phrase == normalise_words(phrase) and phrase for phrase in HALLUCINATIONS)


def test_known_hallucination_is_dropped_only_without_speech() -> None:
    settings = STTSettings()
    hum = (np.sin(np.arange(2 * WHISPER_RATE) * 2 * np.pi * 50 / WHISPER_RATE) * 3000).astype(np.int16)
    assert drop_reason("Thank you.", 0.3, -0.4, hum, settings) == "hallucination"
    assert drop_reason(" you", 0.3, -0.4, hum, settings) == "hallucination"
    assert drop_reason("Subtitles by the Amara.org community", 0.3, -0.4, hum, settings) == "hallucination"
    speech = recording("bram_room.wav")
    assert drop_reason("Thank you.", 0.3, -0.4, speech, settings) is None
    assert drop_reason("Is the road safe?", 0.3, -0.4, hum, settings) is None
    # Whisper's own rule: probably no speech and an unsure decode.
    assert drop_reason("Some words", 0.9, -1.5, speech, settings) == "no_speech"


async def test_transcription_does_not_block_the_event_loop(transcriber: WhisperTranscriber) -> None:
    await transcriber.load()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(ticker())
    try:
        await transcriber.transcribe(recording("birch_age.wav"))
        assert ticks > 1
    finally:
        ticking.cancel()


async def test_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match=str(tmp_path)):
        await WhisperTranscriber(STTSettings(model_path=tmp_path)).transcribe(recording("birch_age.wav"))


def vad_events(samples: Int16Array) -> list[VadEvent]:
    vad = StreamingVad()
    events: list[VadEvent] = []
    for start in range(0, len(samples), 480):
        events.extend(vad.feed(samples[start : start + 480]))
    return events + vad.flush()


async def test_speculation_is_replaced_on_resume_and_reused_at_the_end(transcriber: WhisperTranscriber) -> None:
    speculative = SpeculativeTranscriber(transcriber)
    transcripts: list[Transcript] = []
    for event in vad_events(recording("bram_room.wav")):
        if isinstance(event, SilenceStarted):
            speculative.start("Alice", event.utterance_id, event.audio, VILLAGE_NAMES)
        if isinstance(event, UtteranceEnded):
            transcripts.append(await speculative.finish("Alice", event.utterance_id, event.audio, VILLAGE_NAMES))
    await speculative.aclose()
    # "Bram," pauses: the speculation on the name alone is replaced by the one at the end of the question.
    assert speculative.stats.discarded == 1
    assert speculative.stats.started == 2 and speculative.stats.reused == 1 and speculative.stats.fresh == 0
    (transcript,) = transcripts
    assert word_error_rate("Bram, do you have a room for the night?", transcript.text) <= 0.2


async def test_speculation_for_other_audio_is_not_reused(transcriber: WhisperTranscriber) -> None:
    speculative = SpeculativeTranscriber(transcriber)
    events = vad_events(recording("two_questions.wav"))
    first_ended, other_utterance = [e for e in events if isinstance(e, UtteranceEnded)]
    first_pause = [e for e in events if isinstance(e, SilenceStarted) and e.utterance_id == first_ended.utterance_id]
    speculative.start("Bob", first_pause[-1].utterance_id, first_pause[-1].audio)
    transcript = await speculative.finish("Bob", other_utterance.utterance_id, other_utterance.audio)
    await speculative.aclose()
    assert speculative.stats.reused == 0 and speculative.stats.fresh == 1 and speculative.stats.discarded == 1
    assert word_error_rate("And who keeps watch at the gate?", transcript.text) <= 0.2, transcript.text


async def test_player_said_carries_text_confidence_and_timings(transcriber: WhisperTranscriber) -> None:
    samples = recording("birch_age.wav")
    utterance = PlayerUtterance(server="example", player="Alice", audio=samples.tobytes(), speech_end_ts=123.0)
    transcript = await transcriber.transcribe(utterance.audio, vocabulary=VILLAGE_NAMES)
    said = player_said(utterance, transcript)
    assert said is not None
    assert said.source == "voice" and said.utterance_id == utterance.id and said.speech_end_ts == 123.0
    assert said.confidence == transcript.confidence and said.stt_ms == transcript.ms
    assert transcript.language == "en" and said.language is None  # English is every NPC's default: nothing to pass
    heard_russian = player_said(utterance, transcript.model_copy(update={"language": "ru"}))
    assert heard_russian is not None and heard_russian.language == "ru"
    silent = await transcriber.transcribe(np.zeros(WHISPER_RATE, dtype=np.int16))
    assert player_said(utterance, silent) is None


async def test_utterances_on_the_hub_become_player_said(transcriber: WhisperTranscriber) -> None:
    bus = MemoryBus(TEST_BUS_SETTINGS)
    handler = TranscriptionHandler(bus, transcriber, vocabulary=lambda _: VILLAGE_NAMES)
    heard = Collector()
    silent = PlayerUtterance(server="example", player="Bob", audio=bytes(2 * WHISPER_RATE))
    at_48k = resample(recording("bram_room.wav"), WHISPER_RATE, 48000)
    spoken = PlayerUtterance(server="example", player="Alice", audio=at_48k.tobytes(), sample_rate=48000)
    async with (
        consuming(bus, stream_for(spoken), "speech", "speech-1", handler),
        consuming(bus, stream_name("example", StreamKind.SAID), "brain", "brain-1", heard),
    ):
        await bus.publish(stream_for(silent), silent)
        await bus.publish(stream_for(spoken), spoken)
        await wait_until(lambda: len(heard.events) >= 1, "a PlayerSaid")
    await bus.aclose()
    # Utterances are handled in order, so the silent one was done (and published nothing) before the spoken one.
    (said,) = heard.events
    assert isinstance(said, PlayerSaid)
    assert said.player == "Alice" and said.source == "voice" and said.utterance_id == spoken.id
    assert word_error_rate("Bram, do you have a room for the night?", said.text) <= 0.2, said.text
