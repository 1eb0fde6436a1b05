"""Microphone path: ordering of frames, gap filling, and recorded speech that becomes a PlayerUtterance only when an
NPC's hearing range contains the speaker (real VAD, real WebSocket)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from host.speech.audio import WHISPER_RATE, rms_dbfs, without_trailing_silence
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.microphone import SequenceTracker
from proximity_audio.world import SpatialWorld
from tests.bridge_support import (
    at,
    client,
    eventually,
    frames_of,
    recording_48k,
    running_bridge,
)


@pytest.mark.parametrize(
    ("sequences", "verdicts"),
    [
        ([0, 1, 2], [0, 0, 0]),
        ([10, 11, 14], [0, 0, 2]),  # two frames lost: filled with silence
        ([0, 1, 1, 0, 2], [0, 0, None, None, 0]),  # a duplicate and a late frame are dropped
        ([0, 100], [0, 0]),  # a long pause in sending, not a loss: nothing filled
        ([2**32 - 2, 2**32 - 1, 0, 2], [0, 0, 0, 1]),  # the u32 sequence wraps around
    ],
)
def test_sequence_tracker(sequences: list[int], verdicts: list[int | None]) -> None:
    tracker = SequenceTracker(max_gap=25)
    assert [tracker.admit(s) for s in sequences] == verdicts


@pytest.fixture
def world() -> SpatialWorld:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    return world


async def send_interleaved(plugin: BridgeClient, streams: dict[int, list[np.ndarray]]) -> None:
    longest = max(len(frames) for frames in streams.values())
    for sequence in range(longest):
        for index, frames in streams.items():
            if sequence < len(frames):
                await plugin.send_microphone(index, sequence, frames[sequence])


async def test_speech_becomes_an_utterance_only_when_an_npc_hears_the_speaker(world: SpatialWorld) -> None:
    speech = recording_48k("bram_room.wav")
    frames = frames_of(speech, trailing_silence_s=1.0)
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(3, 0, yaw=90))  # 3 blocks from Bram, inside his 8-block hearing range
        await plugin.join(1, "Bob", at(0, 20))  # 20 blocks away: Bram cannot hear him
        await send_interleaved(plugin, {0: frames, 1: frames})
        await eventually(lambda: server.stats.utterances_heard + server.stats.utterances_unheard == 2)
    assert server.stats.utterances_heard == 1 and server.stats.utterances_unheard == 1
    [utterance] = heard.utterances
    assert (utterance.server, utterance.player, utterance.sample_rate) == ("survival", "Alice", WHISPER_RATE)
    assert utterance.position == at(3, 0, yaw=90)
    duration = len(utterance.audio) / 2 / WHISPER_RATE
    assert 1.2 < duration < len(speech) / 48_000 + 0.5
    assert rms_dbfs(np.frombuffer(utterance.audio, dtype="<i2").astype(np.int16)) > -40
    assert [s.player for s in heard.starts] == ["Alice"]


async def test_a_player_walking_into_range_is_heard(world: SpatialWorld) -> None:
    frames = frames_of(recording_48k("bram_room.wav"), trailing_silence_s=1.0)
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(0, 30))
        await plugin.move({0: at(0, 5)})
        await send_interleaved(plugin, {0: frames})
        await eventually(lambda: len(heard.utterances) == 1)


async def test_lost_and_repeated_frames_do_not_break_the_utterance(world: SpatialWorld) -> None:
    frames = frames_of(recording_48k("bram_room.wav"), trailing_silence_s=1.0)
    lost = {20, 21, 22, 60}
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        for sequence, frame in enumerate(frames):
            if sequence in lost:
                continue
            await plugin.send_microphone(0, sequence, frame)
            if sequence in (30, 31):
                await plugin.send_microphone(0, sequence - 5, frames[sequence - 5])  # late duplicates
        await eventually(lambda: len(heard.utterances) == 1)
    assert server.stats.frames_filled == len(lost)
    assert server.stats.frames_late == 2
    assert server.stats.frames_in == len(frames) - len(lost)


async def test_an_utterance_in_progress_is_delivered_when_the_player_leaves(world: SpatialWorld) -> None:
    speech = recording_48k("bram_room.wav")
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await send_interleaved(plugin, {0: frames_of(speech)})  # no trailing silence: still speaking
        await plugin.leave(0)
        await eventually(lambda: len(heard.utterances) == 1)
    assert heard.utterances[0].player == "Alice"


async def test_an_utterance_ends_when_the_players_frames_stop(world: SpatialWorld) -> None:
    """A plugin sends nothing while its player is silent (docs/bridge-protocol.md): the last frame is where the speech
    ended, and the utterance comes the end silence later, after a pause that carries the same audio for STT."""
    speech = without_trailing_silence(recording_48k("bram_room.wav"))
    async with running_bridge(world) as (server, heard), client(server) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alice", at(2, 0))
        await plugin.stream_microphone(0, speech)  # in real time, and then nothing
        last_frame = time.time()
        await eventually(lambda: len(heard.utterances) == 1)
        assert server.connections == 1  # the player is still there: the silence ended the utterance, not a leave
    (utterance,) = heard.utterances
    assert utterance.player == "Alice" and utterance.speech_end_ts is not None
    assert utterance.speech_end_ts <= last_frame + 0.1
    last_pause = heard.pauses[-1]
    assert (last_pause.utterance_id, last_pause.audio) == (utterance.id, utterance.audio)
    # "Bram," pauses too, while the question goes on: that pause is of the same utterance, with less audio.
    assert all(pause.utterance_id == utterance.id for pause in heard.pauses)
