"""Transcript lines for the hub's events, so every role writes the same line for the same thing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from host.events import (
    AdminCorrection,
    AdminNote,
    NpcActed,
    NpcControl,
    NpcTurnCut,
    NpcTurnEnded,
    PlayerSaid,
    Position,
)
from host.transcript.lines import LinePosition, NoteLine, SpokenLine

_NOT_TAG_CHARS = re.compile(r"[^a-z0-9_]+")


def _ts(event_ts: float) -> datetime:
    return datetime.fromtimestamp(event_ts, UTC)


def _position(position: Position | None) -> LinePosition | None:
    if position is None:
        return None
    return LinePosition(x=position.x, y=position.y, z=position.z, dimension=position.dimension)


def _timing_key(stage: str) -> str:
    key = _NOT_TAG_CHARS.sub("_", stage.lower()).strip("_") or "stage"
    key = key if key[0].isalpha() else f"t_{key}"
    return (key if key.endswith("_ms") else f"{key}_ms")[:32]


def player_said_line(event: PlayerSaid, addressee: str | None = None) -> SpokenLine:
    """`chat Alice @(1.0,64.0,2.5) > bram: "..."`; `addressee` is the NPC that answers, if any."""
    return SpokenLine(
        ts=_ts(event.ts),
        source=event.source,
        speaker=event.player,
        position=_position(event.position),
        addressee=addressee,
        tags={"cut": ""} if event.cut else {},  # the player said more than the host takes in
        text=event.text,
    )


def turn_ended_line(event: NpcTurnEnded, emotion: str | None = None) -> SpokenLine:
    """`npc bram > Alice [turn=ab12 emotion=happy interrupted first_audio_ms=512]: "..."`."""
    tags = {"turn": event.turn_id}
    if emotion:
        tags["emotion"] = emotion
    if event.interrupted:
        tags["interrupted"] = ""
    tags.update({_timing_key(stage): f"{ms:.0f}" for stage, ms in event.timings_ms.items()})
    return SpokenLine(
        ts=_ts(event.ts), source="npc", speaker=event.npc, addressee=event.player, tags=tags, text=event.reply
    )


def admin_note_line(event: AdminNote) -> NoteLine:
    """What the admin page appends for a note; the watcher then delivers it like a hand-written one."""
    return NoteLine(ts=_ts(event.ts), npc=event.npc, author=event.author, text=event.text)


def correction_line(event: AdminCorrection) -> SpokenLine:
    """`admin kim > bram [turn=ab12 correction]: "what bram should have said"`."""
    tags = {"correction": ""} | ({"turn": event.turn_id} if event.turn_id else {})
    return SpokenLine(
        ts=_ts(event.ts), source="admin", speaker=event.author, addressee=event.npc, tags=tags, text=event.text
    )


def control_line(event: NpcControl) -> SpokenLine:
    """`admin Alice > bram [control=pause]: "pause"` - every in-game or admin-page command is on the record."""
    text = " ".join(part for part in (event.action, event.text) if part)
    return SpokenLine(
        ts=_ts(event.ts),
        source="admin",
        speaker=event.author,
        addressee=event.npc if event.npc != "*" else None,
        tags={"control": event.action},
        text=text,
    )


def turn_cut_line(event: NpcTurnCut) -> SpokenLine:
    """`npc bram > Alice [turn=ab12 interrupted heard=1]: "..."` - what the players heard before playback was cut."""
    tags = {"turn": event.turn_id, "interrupted": "", "heard": str(event.sentences_heard)}
    return SpokenLine(
        ts=_ts(event.ts), source="npc", speaker=event.npc, addressee=event.player, tags=tags, text=event.heard
    )


def acted_line(event: NpcActed) -> SpokenLine:
    """`npc bram > Alice [action=give outcome=refused reason=player_limit turn=ab12]: "give bread"` - every action an
    NPC was asked for, performed or not."""
    tags = {"action": event.action.split()[0] if event.action.split() else "none", "outcome": event.outcome}
    if event.reason:
        tags["reason"] = event.reason
    if event.requested_by == "operator":
        tags["by"] = "operator"
    if event.turn_id:
        tags["turn"] = event.turn_id
    return SpokenLine(
        ts=_ts(event.ts), source="npc", speaker=event.npc, addressee=event.player, tags=tags, text=event.action
    )
