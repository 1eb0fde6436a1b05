"""The transcript as the page shows it: one `ViewLine` per transcript line, live from the hub or read from a file.

Both ways use the transcript's own line models (host/transcript/from_events.py), so a line looks the same live and
in the history.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from host.events import (
    AdminCorrection,
    AdminNote,
    AdvisorRecommendation,
    Event,
    NpcControl,
    NpcTurnCut,
    NpcTurnEnded,
    PlayerSaid,
)
from host.transcript.from_events import (
    admin_note_line,
    control_line,
    correction_line,
    player_said_line,
    turn_cut_line,
    turn_ended_line,
)
from host.transcript.lines import NoteLine, SpokenLine, TranscriptLine

_PLAYER_SOURCES = ("voice", "chat")


class ViewLine(BaseModel):
    ref: str
    ts: datetime | None
    source: str
    speaker: str
    addressee: str | None
    npc: str | None
    player: str | None
    tags: dict[str, str]
    text: str


def view_line(line: TranscriptLine, ref: str) -> ViewLine:
    """`ref` names the line for annotations: `<day>:<line number>` from a file, `event:<id>` live."""
    if isinstance(line, NoteLine):
        return ViewLine(
            ref=ref,
            ts=line.ts,
            source="note",
            speaker=line.author or "admin",
            addressee=line.npc,
            npc=line.npc,
            player=None,
            tags={},
            text=line.text,
        )
    npc, player = _roles(line)
    return ViewLine(
        ref=ref,
        ts=line.ts,
        source=line.source,
        speaker=line.speaker,
        addressee=line.addressee,
        npc=npc,
        player=player,
        tags=dict(line.tags),
        text=line.text,
    )


def _roles(line: SpokenLine) -> tuple[str | None, str | None]:
    """Which NPC and which player a spoken line is about, for the page's filters."""
    if line.source == "npc":
        return line.speaker, line.addressee
    if line.source in _PLAYER_SOURCES:
        return line.addressee, line.speaker
    return line.addressee, None


def addressed_player_line(said: PlayerSaid, npc: str) -> ViewLine:
    """A player's line as the NPC answering it makes it: addressed to that NPC, as the transcript file has it."""
    return view_line(player_said_line(said, npc), f"event:{said.id}")


def event_view_line(event: Event) -> ViewLine | None:
    """The line an event adds to the transcript, or None for events that add none (sentences, audio, positions)."""
    line: TranscriptLine
    if isinstance(event, PlayerSaid):
        line = player_said_line(event)
    elif isinstance(event, NpcTurnEnded):
        line = turn_ended_line(event)
    elif isinstance(event, AdminNote):
        line = admin_note_line(event)
    elif isinstance(event, AdminCorrection):
        line = correction_line(event)
    elif isinstance(event, NpcControl):
        line = control_line(event)
    elif isinstance(event, NpcTurnCut):
        line = turn_cut_line(event)
    elif isinstance(event, AdvisorRecommendation):
        text = "; ".join([*event.steering, *event.warnings]) or (event.mood or "no advice")
        ts = datetime.fromtimestamp(event.ts, UTC)
        line = SpokenLine(ts=ts, source="advisor", speaker="advisor", addressee=event.npc, text=text)
    else:
        return None
    return view_line(line, f"event:{event.id}")
