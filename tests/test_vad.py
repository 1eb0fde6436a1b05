"""Streaming VAD on the committed recordings: splitting, pauses, coughs, odd input formats and the length cap."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from host.config import VADSettings
from host.demo_assets import load_manifest
from host.speech.audio import (
    WHISPER_RATE,
    Int16Array,
    conform,
    read_wav,
    resample,
    write_wav,
)
from host.speech.vad import (
    QUIET_WINDOWS_BEFORE_SKIP,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    StreamingVad,
    UtteranceEnded,
    VadEvent,
)


def recording(file: str) -> Int16Array:
    return conform(read_wav(load_manifest().get(file).path), WHISPER_RATE)


def run(samples: Int16Array, chunk: int = 320, settings: VADSettings | None = None) -> list[VadEvent]:
    vad = StreamingVad(settings)
    events: list[VadEvent] = []
    for start in range(0, len(samples), chunk):
        events.extend(vad.feed(samples[start : start + chunk], wall_ts=1000.0 + (start + chunk) / WHISPER_RATE))
    events.extend(vad.flush())
    return events


def utterances(events: list[VadEvent]) -> list[UtteranceEnded]:
    return [e for e in events if isinstance(e, UtteranceEnded)]


def speech_region(samples: Int16Array) -> Int16Array:
    """The recording without its leading and trailing silence."""
    loud = np.flatnonzero(np.abs(samples) > 500)
    return samples[loud[0] : loud[-1]]


def test_two_questions_become_two_utterances() -> None:
    samples = recording("two_questions.wav")
    events = run(samples)
    ended = utterances(events)
    assert len(ended) == 2
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert [s.utterance_id for s in starts] == [u.utterance_id for u in ended]
    # The one-second gap lies between the first utterance's speech end and the second one's start.
    assert ended[0].speech_end_ts + 0.6 < starts[1].audio_ts
    assert not any(u.cut for u in ended)
    for utterance in ended:
        assert 1.0 < utterance.duration_s < 4.0
        assert np.abs(utterance.audio).max() > 5000


def test_events_do_not_depend_on_chunk_size() -> None:
    samples = recording("two_questions.wav")
    by_chunk = {chunk: [(type(e).__name__, e.sample) for e in run(samples, chunk)] for chunk in (160, 512, 960, 7777)}
    assert len(set(map(tuple, by_chunk.values()))) == 1


def test_comma_pause_is_reported_then_resumed_and_speculation_audio_matches_the_end() -> None:
    events = run(recording("bram_room.wav"))
    kinds = [type(e).__name__ for e in events]
    # "Bram, ..." pauses after the name: silence is reported, then speech resumes within the same utterance.
    assert kinds[:3] == ["SpeechStarted", "SilenceStarted", "SpeechResumed"]
    assert kinds[-2:] == ["SilenceStarted", "UtteranceEnded"]
    assert len({e.utterance_id for e in events}) == 1
    last_pause = events[-2]
    ended = events[-1]
    assert isinstance(last_pause, SilenceStarted) and isinstance(ended, UtteranceEnded)
    assert last_pause.sample == ended.sample
    assert np.array_equal(last_pause.audio, ended.audio)
    resumed = events[2]
    assert isinstance(resumed, SpeechResumed) and resumed.sample > events[1].sample


def run_with_hint(samples: Int16Array, hint: Callable[[StreamingVad, VadEvent], None]) -> list[tuple[VadEvent, int]]:
    """Each event with the number of samples fed when it came out; `hint` sees every event as it comes."""
    vad = StreamingVad()
    seen: list[tuple[VadEvent, int]] = []
    for start in range(0, len(samples), 320):
        for event in vad.feed(samples[start : start + 320], wall_ts=1000.0 + (start + 320) / WHISPER_RATE):
            seen.append((event, start + 320))
            hint(vad, event)
    return seen


def test_a_line_that_sounds_finished_ends_after_the_shorter_silence_with_the_paused_audio() -> None:
    samples = recording("birch_age.wav")

    pauses: list[SilenceStarted] = []

    def finished(vad: StreamingVad, event: VadEvent) -> None:
        if isinstance(event, SilenceStarted):
            pauses.append(event)
        if len(pauses) == 2 and event is pauses[1]:  # after "how old are you?", not the comma after "Old Birch"
            assert vad.end_early(event.utterance_id, event.wall_ts, 192)

    plain = run_with_hint(samples, lambda vad, event: None)
    early = run_with_hint(samples, finished)
    plain_end = next((e, fed) for e, fed in plain if isinstance(e, UtteranceEnded))
    early_end = next((e, fed) for e, fed in early if isinstance(e, UtteranceEnded))
    pause = pauses[-1]
    assert isinstance(early_end[0], UtteranceEnded)
    silence_heard_ms = (early_end[1] - early_end[0].sample) * 1000 / WHISPER_RATE
    assert 192 <= silence_heard_ms < 192 + 64  # not the 400 ms of `end_silence_ms`
    assert (plain_end[1] - plain_end[0].sample) * 1000 / WHISPER_RATE >= 400
    # The same utterance, only sooner: the speculative transcript of the pause is still the right one.
    assert early_end[0].sample == plain_end[0].sample
    assert np.array_equal(early_end[0].audio, pause.audio)
    assert early_end[0].early and not plain_end[0].early


@pytest.mark.parametrize("hint_comes", ["after the speaker resumed", "in the next pause", "after the end"])
def test_a_hint_for_a_pause_the_speaker_went_on_from_is_ignored(hint_comes: str) -> None:
    """ "Bram," sounded finished, but its transcript comes back after he went on (while he speaks, or already in the
    pause after the whole question: it says nothing about what was said since), or the utterance has ended: the
    pause after the question waits the whole silence."""
    samples = recording("bram_room.wav")
    pauses: list[SilenceStarted] = []
    refused: list[bool] = []

    def late_hint(vad: StreamingVad, event: VadEvent) -> None:
        if isinstance(event, SilenceStarted):
            pauses.append(event)
        due = {
            "after the speaker resumed": isinstance(event, SpeechResumed),
            "in the next pause": isinstance(event, SilenceStarted) and len(pauses) == 2,
            "after the end": isinstance(event, UtteranceEnded),
        }[hint_comes]
        if due:
            pause = pauses[-1] if hint_comes == "after the end" else pauses[0]
            refused.append(vad.end_early(pause.utterance_id, pause.wall_ts, 96))

    seen = run_with_hint(samples, late_hint)
    ended = [(e, fed) for e, fed in seen if isinstance(e, UtteranceEnded)]
    assert refused and not any(refused)
    assert len(ended) == 1 and not ended[0][0].early
    assert (ended[0][1] - ended[0][0].sample) * 1000 / WHISPER_RATE >= 400


def test_a_hint_no_shorter_than_the_end_silence_changes_nothing() -> None:
    samples = recording("birch_age.wav")
    answers: list[bool] = []

    def long_wait(vad: StreamingVad, event: VadEvent) -> None:
        if isinstance(event, SilenceStarted):
            answers.append(vad.end_early(event.utterance_id, event.wall_ts, 600))

    seen = run_with_hint(samples, long_wait)
    assert answers and not any(answers)
    assert not any(isinstance(e, UtteranceEnded) and e.early for e, _ in seen)


def test_wall_clock_maps_the_audio_clock() -> None:
    events = run(recording("birch_age.wav"))
    for event in events:
        assert event.wall_ts == pytest.approx(1000.0 + event.audio_ts, abs=1e-6)


@pytest.mark.parametrize("seconds", [0.0, 0.01, 3.0])
def test_silence_and_empty_input_make_no_events(seconds: float) -> None:
    assert run(np.zeros(int(seconds * WHISPER_RATE), dtype=np.int16)) == []


def test_quiet_noise_makes_no_utterance() -> None:
    noise = (np.random.default_rng(7).normal(0, 60, 3 * WHISPER_RATE)).astype(np.int16)
    assert utterances(run(noise)) == []


def test_a_cough_below_minimum_speech_is_neither_start_nor_utterance() -> None:
    speech = speech_region(recording("bram_room.wav"))
    cough = speech[: int(0.15 * WHISPER_RATE)]
    silence = np.zeros(WHISPER_RATE, dtype=np.int16)
    events = run(np.concatenate([silence, cough, silence]))
    assert not any(isinstance(e, SpeechStarted | UtteranceEnded) for e in events)
    # The same sound lasting longer than the minimum is speech.
    longer = run(np.concatenate([silence, speech[: int(1.0 * WHISPER_RATE)], silence]))
    assert len(utterances(longer)) == 1


def test_pre_roll_keeps_the_onset() -> None:
    samples = recording("birch_age.wav")
    (ended,) = utterances(run(samples))
    onset = np.flatnonzero(np.abs(samples) > 500)[0] / WHISPER_RATE
    assert ended.start_ts < onset


@pytest.mark.parametrize("variant", ["dc_offset", "clipped", "8khz", "stereo_44k"])
def test_awkward_input_still_splits(tmp_path: Path, variant: str) -> None:
    samples = recording("two_questions.wav")
    path = tmp_path / f"{variant}.wav"
    if variant == "dc_offset":
        write_wav(path, np.clip(samples.astype(np.int32) + 9000, -32768, 32767).astype(np.int16), WHISPER_RATE)
    elif variant == "clipped":
        write_wav(path, np.clip(samples.astype(np.int32) * 8, -32768, 32767).astype(np.int16), WHISPER_RATE)
    elif variant == "8khz":
        write_wav(path, resample(samples, WHISPER_RATE, 8000), 8000)
    else:
        at_44k = resample(samples, WHISPER_RATE, 44100)
        write_wav(path, np.stack([at_44k, (at_44k // 2).astype(np.int16)], axis=1), 44100)
    assert len(utterances(run(conform(read_wav(path), WHISPER_RATE)))) == 2


def test_two_minute_monologue_is_cut_at_the_cap_and_nothing_is_lost() -> None:
    # One breath each: comma_pause.wav pauses long enough mid-question to end an utterance by itself.
    singles = [r for r in load_manifest().recordings if len(r.utterances) == 1 and r.file != "comma_pause.wav"]
    pieces = [speech_region(recording(r.file)) for r in singles]
    short_breath = np.zeros(int(0.15 * WHISPER_RATE), dtype=np.int16)
    monologue_parts: list[Int16Array] = []
    while sum(len(p) for p in monologue_parts) < 120 * WHISPER_RATE:
        for piece in pieces:
            monologue_parts += [piece, short_breath]
    monologue = np.concatenate(monologue_parts)
    settings = VADSettings(max_utterance_s=10.0)
    events = run(monologue, chunk=4096, settings=settings)
    ended = utterances(events)
    assert len(ended) >= 12
    assert all(u.duration_s <= 10.0 for u in ended)
    assert all(u.cut for u in ended[:-1]) and not ended[-1].cut
    # Consecutive pieces join without a gap, and together they cover the whole monologue.
    for before, after in itertools.pairwise(ended):
        assert before.start_sample + len(before.audio) == after.start_sample
    covered = sum(len(u.audio) for u in ended)
    assert covered >= len(monologue) - WHISPER_RATE
    continued = [e for e in events if isinstance(e, SpeechStarted) and e.continued]
    assert len(continued) == len(ended) - 1


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="pause_ms"):
        VADSettings(pause_ms=800, end_silence_ms=400)
    with pytest.raises(ValidationError):
        VADSettings(threshold=1.5)


def test_long_digital_silence_skips_the_model_without_changing_the_result() -> None:
    vad = StreamingVad()
    assert vad.feed(np.zeros(10 * WHISPER_RATE, dtype=np.int16)) == []
    assert vad.windows_inferred == QUIET_WINDOWS_BEFORE_SKIP
    samples = recording("two_questions.wav")
    lead_in = 156 * 512  # about 5 s, whole windows so both runs see the speech in the same window positions
    plain = [(type(e).__name__, e.sample) for e in run(samples)]
    padded = [
        (type(e).__name__, e.sample - lead_in) for e in run(np.concatenate([np.zeros(lead_in, np.int16), samples]))
    ]
    assert padded == plain
