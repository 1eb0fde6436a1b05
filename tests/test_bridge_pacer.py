"""Pacing NPC audio: resampled to 48 kHz, one 20 ms frame per tick, streams that start, finish, and stop at once."""

from __future__ import annotations

import asyncio

import numpy as np

from host.speech.audio import PIPER_RATE, Int16Array, rms_dbfs
from proximity_audio.pacer import MARKS_KEPT, PacedTick, Pacer
from proximity_audio.protocol import FRAME_SAMPLES


def voice(seconds: float, rate: int = PIPER_RATE) -> Int16Array:
    t = np.arange(int(seconds * rate)) / rate
    samples: Int16Array = np.rint(12_000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    return samples


def drain(pacer: Pacer, ticks: int) -> list[PacedTick]:
    return [pacer.tick() for _ in range(ticks)]


def test_one_frame_per_tick_with_the_whole_sentence_at_48k() -> None:
    pacer = Pacer(end_after_idle_ticks=3)
    pacer.enqueue("bram", voice(1.0), PIPER_RATE)
    ticks = drain(pacer, 60)
    frames = [t.frames["bram"] for t in ticks if "bram" in t.frames]
    assert len(frames) == 50  # one second of audio = 50 frames of 20 ms, the tail padded to a whole frame
    assert [f.sequence for f in frames] == list(range(50))
    assert all(len(f.samples) == FRAME_SAMPLES for f in frames)
    assert rms_dbfs(np.concatenate([f.samples for f in frames[5:45]])) > -12
    assert ticks[0].started == ["bram"]
    assert [t.ended for t in ticks if t.ended] == [[("bram", "finished")]]


def test_gaps_between_sentences_do_not_end_the_stream() -> None:
    pacer = Pacer(end_after_idle_ticks=10)
    pacer.enqueue("bram", voice(0.1), PIPER_RATE)
    first = drain(pacer, 8)  # 5 frames of audio, then 3 ticks waiting for the next sentence
    pacer.enqueue("bram", voice(0.1), PIPER_RATE)
    rest = drain(pacer, 30)
    assert sum(t.started.count("bram") for t in first + rest) == 1
    sequences = [t.frames["bram"].sequence for t in first + rest if "bram" in t.frames]
    assert sequences == list(range(10))


def test_stop_silences_within_one_frame() -> None:
    pacer = Pacer()
    pacer.enqueue("bram", voice(3.0), PIPER_RATE)
    pacer.enqueue("hilde", voice(3.0), PIPER_RATE)
    drain(pacer, 5)
    assert pacer.stop("bram") is True
    after = pacer.tick()
    assert "bram" not in after.frames and "hilde" in after.frames
    assert after.ended == [("bram", "stopped")]
    assert all("bram" not in t.frames for t in drain(pacer, 20))
    assert pacer.stop("bram") is False


def test_chunks_of_a_sentence_stream_without_losing_samples() -> None:
    pacer = Pacer(end_after_idle_ticks=2)
    whole = voice(0.5)
    for start in range(0, len(whole), 1000):
        chunk = whole[start : start + 1000]
        pacer.enqueue("bram", chunk, PIPER_RATE, final=start + 1000 >= len(whole))
    frames = [t.frames["bram"] for t in drain(pacer, 40) if "bram" in t.frames]
    assert len(frames) == 25  # 0.5 s at 48 kHz = 24000 samples = 25 frames


def test_a_sentence_whose_end_never_comes_ends_the_stream_after_a_while() -> None:
    pacer = Pacer(end_after_idle_ticks=3)
    pacer.enqueue("bram", voice(0.5), PIPER_RATE, final=False)
    early = drain(pacer, 40)  # its audio, then a pause far longer than between two chunks of one sentence
    assert not any(t.ended for t in early) and pacer.busy
    late = drain(pacer, 250)  # 5 s without the rest of the sentence: its speaker is gone
    assert [t.ended for t in late if t.ended] == [[("bram", "finished")]]
    assert not pacer.busy


async def test_run_ticks_in_real_time_and_sleeps_when_idle() -> None:
    pacer = Pacer(end_after_idle_ticks=1)
    seen: list[PacedTick] = []
    done = asyncio.Event()

    async def on_tick(tick: PacedTick) -> None:
        seen.append(tick)
        if tick.ended:
            done.set()

    task = asyncio.create_task(pacer.run(on_tick))
    try:
        pacer.enqueue("bram", voice(0.2), PIPER_RATE)
        async with asyncio.timeout(5):
            await done.wait()
        assert sum(1 for t in seen if "bram" in t.frames) == 10
        assert not pacer.busy
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_heard_names_the_sentences_played_to_the_end() -> None:
    pacer = Pacer()
    pacer.enqueue("bram", voice(0.2), PIPER_RATE, mark=("t1", 0))  # 10 frames
    pacer.enqueue("bram", voice(0.2), PIPER_RATE, mark=("t1", 1))
    drain(pacer, 9)
    assert pacer.heard("bram") == []  # the last frame of sentence 0 has not left yet
    drain(pacer, 1)
    assert pacer.heard("bram") == [("t1", 0)]
    drain(pacer, 10)
    assert pacer.heard("bram") == [("t1", 0), ("t1", 1)]
    assert pacer.heard("hilde") == []


def test_an_npc_that_never_falls_silent_keeps_only_its_latest_marks() -> None:
    pacer = Pacer()
    sentences = MARKS_KEPT + 40
    for index in range(sentences):  # 20 ms sentences back to back: the stream never idles out
        pacer.enqueue("bram", voice(0.02), PIPER_RATE, mark=("t1", index))
        drain(pacer, 1)
    heard = pacer.heard("bram")
    assert heard == [("t1", index) for index in range(sentences - MARKS_KEPT, sentences)]
