"""TTS on the packaged Piper voice: audible output of plausible length, emotions, streaming, voice selection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

# Importing registers the commands; with more than one, typer keeps `say` a subcommand as in `npc-host`.
import host.cli.config_cmd
import host.cli.say_cmd  # noqa: F401
from host.cli import app
from host.packaged_models import piper_joe_paths
from host.profiles.schema import EmotionVoice, VoiceSpec
from host.speech.audio import pcm16_to_int16, read_wav, rms_dbfs
from host.speech.emotions import BASE_VOLUME, DEFAULT_EMOTIONS, canonical_emotion, voice_params
from host.speech.speaker import SentenceSpeaker, SpokenChunk
from host.speech.tts import PiperSynthesizer, VoiceError

LINE = "Welcome to the Gilded Pickaxe, traveller."
# Without generator noise Piper is deterministic, so durations compare exactly between runs.
STEADY = VoiceSpec(variation=0.0)
runner = CliRunner()


@pytest.fixture(scope="session")
def synthesizer() -> PiperSynthesizer:
    return PiperSynthesizer()


async def test_speech_is_audible_and_fits_the_text(synthesizer: PiperSynthesizer) -> None:
    audio = await synthesizer.synthesize(LINE, VoiceSpec())
    samples = pcm16_to_int16(audio.pcm)
    assert audio.sample_rate == 22050
    assert rms_dbfs(samples) > -35.0
    assert 40 * len(LINE) <= audio.duration_ms <= 200 * len(LINE)
    assert audio.params.emotion == "neutral"


async def test_empty_text_gives_no_audio(synthesizer: PiperSynthesizer) -> None:
    audio = await synthesizer.synthesize("   ", VoiceSpec())
    assert audio.pcm == b"" and audio.duration_ms == 0


def test_emotion_table_changes_voice_parameters() -> None:
    neutral = voice_params(VoiceSpec(), None)
    happy = voice_params(VoiceSpec(), "happy")
    sad = voice_params(VoiceSpec(), "sad")
    angry = voice_params(VoiceSpec(), "Angry")
    assert happy.length_scale < neutral.length_scale < sad.length_scale
    assert happy.noise_scale > neutral.noise_scale > sad.noise_scale
    assert sad.volume < neutral.volume < angry.volume
    assert neutral.volume == BASE_VOLUME and neutral.length_scale == 1.0
    # The NPC's base voice multiplies in: a fast speaker is faster still when happy.
    assert voice_params(VoiceSpec(speed=1.5), "happy").length_scale == pytest.approx(1 / (1.5 * 1.10))


def test_stage_directions_and_unknown_tags_resolve() -> None:
    assert canonical_emotion("whispers") == "whisper"
    assert canonical_emotion("*sighs*".strip("*")) == "sad"
    assert canonical_emotion("laughs heartily") == "happy"
    assert canonical_emotion("bewildered") == "neutral"
    assert canonical_emotion(None) == "neutral"
    assert set(DEFAULT_EMOTIONS) >= {"neutral", "happy", "sad", "angry", "whisper", "fearful"}


def test_npc_emotion_table_overrides_and_extends_the_default() -> None:
    voice = VoiceSpec(emotions={"sad": EmotionVoice(speed=0.5), "creaky": EmotionVoice(speed=0.6, volume=0.9)})
    assert voice_params(voice, "sad").length_scale == pytest.approx(2.0)
    assert voice_params(voice, "sighs").length_scale == pytest.approx(2.0)  # alias of sad -> the NPC's sad
    creaky = voice_params(voice, "creaky")
    assert creaky.emotion == "creaky" and creaky.volume == pytest.approx(BASE_VOLUME * 0.9)
    assert voice_params(VoiceSpec(), "creaky").emotion == "neutral"


async def test_emotion_speed_and_volume_reach_the_audio(synthesizer: PiperSynthesizer) -> None:
    neutral = await synthesizer.synthesize(LINE, STEADY)
    sad = await synthesizer.synthesize(LINE, STEADY, "sad")
    excited = await synthesizer.synthesize(LINE, STEADY, "excited")
    whisper = await synthesizer.synthesize(LINE, STEADY, "whispers")
    assert excited.duration_ms < neutral.duration_ms < sad.duration_ms
    # length_scale stretches phonemes, not the fixed parts around them, so the ratio is below 1.20 / 0.85.
    assert sad.duration_ms / excited.duration_ms > 1.15
    loudness = {name: rms_dbfs(pcm16_to_int16(a.pcm)) for name, a in [("neutral", neutral), ("whisper", whisper)]}
    assert loudness["whisper"] < loudness["neutral"] - 3.0


async def test_stream_yields_each_sentence_and_matches_whole_synthesis(synthesizer: PiperSynthesizer) -> None:
    text = "Aye, one room left. It is above the kitchen. Two coins a night."
    chunks = [chunk async for chunk in synthesizer.stream(text, STEADY, "happy")]
    assert len(chunks) == 3
    assert all(c.params.emotion == "happy" and rms_dbfs(pcm16_to_int16(c.pcm)) > -35 for c in chunks)
    whole = await synthesizer.synthesize(text, STEADY, "happy")
    assert b"".join(c.pcm for c in chunks) == whole.pcm


async def test_a_consumer_may_stop_after_the_first_sentence(synthesizer: PiperSynthesizer) -> None:
    stream = synthesizer.stream("First. Second. Third.", STEADY)
    first = await anext(stream)
    await stream.aclose()
    assert first.duration_ms > 100


async def test_voices_load_once(synthesizer: PiperSynthesizer) -> None:
    assert await synthesizer.load(VoiceSpec()) is await PiperSynthesizer().load(VoiceSpec(speed=2.0))


async def test_voice_by_relative_path_and_missing_voice_named(tmp_path: Path) -> None:
    model, config = piper_joe_paths()
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "innkeeper.onnx").symlink_to(model)
    (tmp_path / "voices" / "innkeeper.onnx.json").symlink_to(config)
    synthesizer = PiperSynthesizer(voices_dir=tmp_path)
    audio = await synthesizer.synthesize("Hello there.", VoiceSpec(model="voices/innkeeper.onnx"))
    assert np.abs(pcm16_to_int16(audio.pcm)).max() > 1000
    with pytest.raises(VoiceError, match=r"voices/nobody\.onnx"):
        await synthesizer.synthesize("Hello.", VoiceSpec(model="voices/nobody.onnx"))


async def test_speaker_out_of_range_is_refused(synthesizer: PiperSynthesizer) -> None:
    with pytest.raises(VoiceError, match="speaker 3"):
        await synthesizer.synthesize("Hello.", VoiceSpec(speaker=3))


def test_say_writes_the_line_in_the_npc_voice(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "bram.wav"
    profiles = str(repo_root / "npc_profiles")
    result = runner.invoke(
        app,
        ["say", "example", "Bram", "[sad] The cellar flooded again.", "--out", str(out), "--profiles-dir", profiles],
    )
    assert result.exit_code == 0, result.output
    assert "(sad)" in result.output
    audio = read_wav(out)
    assert audio.rate == 22050 and audio.channels == 1
    assert rms_dbfs(audio.samples[:, 0]) > -40 and audio.duration_s > 1.0


def test_say_names_the_known_npcs_when_one_is_missing(repo_root: Path, tmp_path: Path) -> None:
    profiles = str(repo_root / "npc_profiles")
    result = runner.invoke(
        app, ["say", "example", "gandalf", "Hi.", "--out", str(tmp_path / "x.wav"), "--profiles-dir", profiles]
    )
    assert result.exit_code == 1
    assert "has no NPC 'gandalf'" in result.output and "bram (Bram)" in result.output
    assert not (tmp_path / "x.wav").exists()
    result = runner.invoke(
        app, ["say", "example", "bram", "[happy]", "--out", str(tmp_path / "x.wav"), "--profiles-dir", profiles]
    )
    assert result.exit_code == 1 and "nothing to say" in result.output


def test_documented_emotion_table_matches_the_code(repo_root: Path) -> None:
    rows = {}
    for line in (repo_root / "docs" / "speech.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in DEFAULT_EMOTIONS:
            rows[cells[0]] = tuple(float(value) for value in cells[1:4])
    expected = {name: (e.speed, e.variation, e.volume) for name, e in DEFAULT_EMOTIONS.items()}
    assert rows == expected


async def test_speaker_delivers_sentences_in_order_as_they_arrive(synthesizer: PiperSynthesizer) -> None:
    heard: list[SpokenChunk] = []

    async def on_audio(chunk: SpokenChunk) -> None:
        heard.append(chunk)

    speaker = SentenceSpeaker(synthesizer, STEADY, on_audio)
    assert speaker.say("Aye, one room left.", "happy") == 0
    assert speaker.say("It is above the kitchen.") == 1
    assert speaker.say("Two coins a night.", "sad") == 2
    assert await speaker.finish() == [0, 1, 2]
    assert [(c.index, c.final) for c in heard] == [(0, True), (1, True), (2, True)]
    assert [c.audio.params.emotion for c in heard] == ["happy", "neutral", "sad"]
    with pytest.raises(RuntimeError):
        speaker.say("Too late.")


async def test_barge_in_drops_the_sentences_not_yet_delivered(synthesizer: PiperSynthesizer) -> None:
    heard: list[int] = []
    second_playing = asyncio.Event()
    never = asyncio.Event()

    async def on_audio(chunk: SpokenChunk) -> None:
        heard.append(chunk.index)
        if chunk.index == 1:  # playback of the second sentence waits, as a real-time pacer would
            second_playing.set()
            await never.wait()

    speaker = SentenceSpeaker(synthesizer, STEADY, on_audio)
    for text in ("Welcome, traveller.", "The stew is hot.", "The beds are soft.", "Stay a while."):
        speaker.say(text)
    await second_playing.wait()
    assert speaker.interrupt() == [1, 2, 3]
    await speaker.aclose()
    assert speaker.delivered == [0]
    assert heard == [0, 1]  # the third and fourth sentences never reached the audio sink
