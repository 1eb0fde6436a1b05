"""Speech made ahead for a held sentence (host/voice/speech_ahead.py), with the packaged Piper voice."""

from __future__ import annotations

import pytest

from host.profiles.schema import VoiceSpec
from host.speech.tts import PiperSynthesizer, SynthesizedAudio
from host.voice.speech_ahead import HELD, SpeechAhead

VOICE = VoiceSpec()
LINE = "Aye, one room left upstairs."


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    return PiperSynthesizer()


async def spoken(ahead: SpeechAhead, text: str, emotion: str | None = None) -> list[SynthesizedAudio]:
    return [chunk async for chunk in ahead.stream(text, VOICE, emotion)]


async def test_a_sentence_made_ahead_is_spoken_as_made_and_only_once(piper: PiperSynthesizer) -> None:
    ahead = SpeechAhead()
    ahead.synthesizer = piper
    ahead.prepare(VOICE, LINE)
    assert ahead.prepared == 1

    first = await spoken(ahead, LINE)
    again = await spoken(ahead, LINE)  # the same sentence in a later turn is synthesised anew

    assert ahead.prepared == 0
    assert first and again and all(chunk.pcm for chunk in first)
    assert first[0] is not again[0]


async def test_another_emotion_or_voice_is_not_taken_from_what_was_made_ahead(piper: PiperSynthesizer) -> None:
    ahead = SpeechAhead()
    ahead.synthesizer = piper
    ahead.prepare(VOICE, LINE, "happy")
    ahead.prepare(VOICE, LINE)

    sad = await spoken(ahead, LINE, "sad")
    deeper = [chunk async for chunk in ahead.stream(LINE, VoiceSpec(pitch=-3.0))]

    assert sad and deeper and ahead.prepared == 2


async def test_nothing_is_made_ahead_without_a_speech_role_here() -> None:
    ahead = SpeechAhead()
    ahead.prepare(VOICE, LINE)
    assert ahead.prepared == 0
    with pytest.raises(RuntimeError, match="no speech role"):
        await spoken(ahead, LINE)


async def test_sentences_never_asked_for_are_forgotten(piper: PiperSynthesizer) -> None:
    ahead = SpeechAhead()
    ahead.synthesizer = piper
    for n in range(HELD + 3):
        ahead.prepare(VOICE, f"Line number {n}.")
    assert ahead.prepared == HELD
    ahead.clear()
    assert ahead.prepared == 0


async def test_a_dropped_sentence_stops_being_made_and_is_synthesised_anew_if_asked(piper: PiperSynthesizer) -> None:
    ahead = SpeechAhead()
    ahead.synthesizer = piper
    ahead.prepare(VOICE, LINE)
    ahead.prepare(VOICE, "Another line, kept.")
    ahead.drop(VOICE, LINE)
    ahead.drop(VOICE, "A line never made.")  # nothing to stop
    assert ahead.prepared == 1
    assert await spoken(ahead, LINE)  # a later turn saying it after all gets it made afresh
