"""Which of a player's VAD events the host hears: only speech within the hearing range of at least one NPC.

A speech start is the cue for barge-in, a pause the cue for speculative STT, an utterance's end the utterance itself
(its event id is the VAD's utterance id, which its pauses name, so a speculation can be matched to it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from host import metrics
from host.events import PlayerPaused, PlayerSpeechStarted, PlayerUtterance
from host.speech.audio import WHISPER_RATE, int16_to_pcm16
from host.speech.vad import SilenceStarted, SpeechStarted, UtteranceEnded, VadEvent
from proximity_audio.hooks import BridgeHooks, call_safely
from proximity_audio.world import SpatialWorld


@dataclass
class BridgeStats:
    """Counters over the life of a bridge server (for metrics, the bench and tests)."""

    frames_in: int = 0
    frames_filled: int = 0
    frames_late: int = 0
    frames_rate_limited: int = 0
    frames_out: int = 0
    frames_out_dropped: int = 0
    utterances_heard: int = 0
    utterances_unheard: int = 0
    errors_sent: int = 0


async def report_speech(
    player: str,
    events: Sequence[VadEvent],
    *,
    server: str,
    world: SpatialWorld,
    hooks: BridgeHooks,
    stats: BridgeStats,
) -> None:
    """Turn `player`'s speech start, pause and utterance end events into hook calls, where the position at that
    moment is within some NPC's hearing range; the rest is counted and dropped."""
    for event in events:
        if not isinstance(event, SpeechStarted | SilenceStarted | UtteranceEnded):
            continue
        position = world.player(player)
        heard = position is not None and bool(world.npcs_hearing(player))
        if isinstance(event, SpeechStarted):
            if heard and not event.continued:  # a continuation after the length cap is not a new start
                started = PlayerSpeechStarted(server=server, player=player, position=position)
                await call_safely("speech-started", hooks.on_speech_started, started)
            continue
        if isinstance(event, SilenceStarted):
            if heard:
                paused = PlayerPaused(
                    server=server,
                    player=player,
                    utterance_id=event.utterance_id,
                    position=position,
                    audio=int16_to_pcm16(event.audio),
                    sample_rate=WHISPER_RATE,
                    speech_end_ts=event.wall_ts,
                )
                await call_safely("speech-paused", hooks.on_speech_paused, paused)
            continue
        if not heard:
            stats.utterances_unheard += 1
            continue
        stats.utterances_heard += 1
        end = "finished" if event.early else "cut" if event.cut else "silence"
        metrics.UTTERANCES_ENDED_TOTAL.labels(server=server, end=end).inc()
        utterance = PlayerUtterance(
            id=event.utterance_id,
            server=server,
            player=player,
            position=position,
            audio=int16_to_pcm16(event.audio),
            sample_rate=WHISPER_RATE,
            speech_end_ts=event.wall_ts,
        )
        await call_safely("utterance", hooks.on_utterance, utterance)
