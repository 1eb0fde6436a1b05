"""Stream names, in one place. Every server has its own streams: `npc:{server}:{kind}`."""

from __future__ import annotations

import os
import re
import socket
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from host.events import Event

_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StreamKind(StrEnum):
    UTTERANCES = "utterances"  # gateway -> speech (STT)
    SAID = "said"  # gateway (chat) and speech (STT) -> brain
    TURNS = "turns"  # brain -> speech (TTS), gateway (chat), admin, store
    AUDIO = "audio"  # speech (TTS) -> gateway (proximity audio)
    POSITIONS = "positions"  # gateway -> brain (who hears whom), proximity audio
    CONTROL = "control"  # admin -> brain, gateway; its own stream so control never queues behind data
    ADVICE = "advice"  # advisor -> brain, admin
    TRIALS = "trials"  # admin -> brain (a line against a draft profile) -> admin; never recorded


@cache
def event_stream_kinds() -> dict[type[Event], StreamKind]:
    """Which stream kind carries each event type. A function, not a constant, so that naming streams (`npc-host
    status`) does not build the event models."""
    from host.events import (
        AdminCorrection,
        AdminNote,
        AdvisorRecommendation,
        NpcActed,
        NpcAudio,
        NpcControl,
        NpcSentence,
        NpcTrial,
        NpcTrialReply,
        NpcTurnCut,
        NpcTurnEnded,
        NpcTurnStarted,
        PlayerLeft,
        PlayerPaused,
        PlayerSaid,
        PlayerSaidTentative,
        PlayerSpeechStarted,
        PlayerUtterance,
        Positions,
    )

    return {
        PlayerUtterance: StreamKind.UTTERANCES,
        PlayerPaused: StreamKind.UTTERANCES,
        PlayerSaid: StreamKind.SAID,
        PlayerSaidTentative: StreamKind.SAID,
        NpcTurnStarted: StreamKind.TURNS,
        NpcSentence: StreamKind.TURNS,
        NpcTurnEnded: StreamKind.TURNS,
        NpcAudio: StreamKind.AUDIO,
        Positions: StreamKind.POSITIONS,
        AdminNote: StreamKind.CONTROL,
        AdminCorrection: StreamKind.CONTROL,
        NpcControl: StreamKind.CONTROL,
        PlayerSpeechStarted: StreamKind.CONTROL,
        PlayerLeft: StreamKind.CONTROL,
        NpcTurnCut: StreamKind.CONTROL,
        NpcActed: StreamKind.CONTROL,
        AdvisorRecommendation: StreamKind.ADVICE,
        NpcTrial: StreamKind.TRIALS,
        NpcTrialReply: StreamKind.TRIALS,
    }


@cache
def audio_kinds() -> frozenset[StreamKind]:
    """The kinds whose events carry audio (about 100 KB each): their streams keep far fewer handled entries."""
    return frozenset(kind for event_type, kind in event_stream_kinds().items() if event_type.BINARY_FIELDS)


DEAD_LETTER_SUFFIX = ":dead"


def stream_name(server: str, kind: StreamKind) -> str:
    if not _SERVER_NAME.fullmatch(server):
        raise ValueError(f"server name {server!r} cannot name a stream (letters, digits, '_', '.', '-')")
    return f"npc:{server}:{kind.value}"


def stream_server(stream: str) -> str | None:
    """The server of a stream named by `stream_name`; None for any other name (a dead-letter stream, say)."""
    parts = stream.split(":")
    if len(parts) == 3 and parts[0] == "npc" and parts[2] in {kind.value for kind in StreamKind}:
        return parts[1] if _SERVER_NAME.fullmatch(parts[1]) else None
    return None


def carries_audio(stream: str) -> bool:
    """Whether `stream` (as named by `stream_name`; not its dead letters) is one of the audio-carrying kinds."""
    return stream.rsplit(":", 1)[-1] in audio_kinds()


def stream_for(event: Event) -> str:
    """The stream an event is published on."""
    return stream_name(event.server, event_stream_kinds()[type(event)])


def dead_letter_stream(stream: str) -> str:
    return stream + DEAD_LETTER_SUFFIX


def consumer_name(role: str) -> str:
    """A name unique among live processes (host + pid) and stable across a container restart (same hostname, pid 1),
    so a restarted container reads its own pending entries first; any other dead consumer's entries are claimed."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"
