"""Events become transcript lines that read as documented and parse back to the same line."""

from __future__ import annotations

from host.events import AdminCorrection, AdminNote, NpcActed, NpcTurnEnded, PlayerSaid, Position
from host.transcript import format_line, parse_line
from host.transcript.from_events import (
    acted_line,
    admin_note_line,
    correction_line,
    player_said_line,
    turn_ended_line,
)

TS = 1795608001.123  # 2026-11-25T12:00:01.123Z


def test_player_and_npc_lines_read_as_documented() -> None:
    said = PlayerSaid(
        server="village", player="Alice", text="Any rooms free?", ts=TS, position=Position(x=1, y=64, z=2.5)
    )
    ended = NpcTurnEnded(
        server="village",
        npc="bram",
        player="Alice",
        turn_id="ab12",
        cause_id=said.id,
        reply="Aye, one left.",
        interrupted=True,
        timings_ms={"first_audio": 512.4, "STT ms": 80.0, "llm_ms": 300.0},
        ts=TS + 1.333,
    )

    said_text = format_line(player_said_line(said, addressee="bram"))
    ended_text = format_line(turn_ended_line(ended, emotion="happy"))

    assert said_text == '2026-11-25T12:00:01.123Z chat Alice @(1.0,64.0,2.5) > bram: "Any rooms free?"'
    assert ended_text == (
        "2026-11-25T12:00:02.456Z npc bram > Alice [turn=ab12 emotion=happy interrupted first_audio_ms=512"
        ' stt_ms=80 llm_ms=300]: "Aye, one left."'
    )
    assert parse_line(said_text) == player_said_line(said, addressee="bram")
    assert parse_line(ended_text) == turn_ended_line(ended, emotion="happy")


def test_admin_lines_round_trip() -> None:
    note = AdminNote(server="village", npc="bram", author="kim", text="Be kind.\nShe lost her cat.", ts=TS)
    fix = AdminCorrection(server="village", npc="bram", author="kim", turn_id="ab12", text='Say "two coins".', ts=TS)

    assert (
        format_line(admin_note_line(note))
        == "2026-11-25T12:00:01.123Z NOTE @bram [by=kim]: Be kind.\\nShe lost her cat."
    )
    assert parse_line(format_line(admin_note_line(note))) == admin_note_line(note)
    assert parse_line(format_line(correction_line(fix))) == correction_line(fix)


def test_every_npc_action_is_a_line_with_its_outcome() -> None:
    refused = NpcActed(
        server="village",
        npc="bram",
        player="Alice",
        action="give bread",
        outcome="refused",
        reason="player_limit",
        turn_id="ab13",
        ts=TS,
    )
    line = format_line(acted_line(refused))
    assert line == (
        "2026-11-25T12:00:01.123Z npc bram > Alice [action=give outcome=refused reason=player_limit turn=ab13]: "
        '"give bread"'
    )
    assert parse_line(line) == acted_line(refused)
    operator = NpcActed(
        server="village", npc="bram", player="Op_Alice", action="follow", outcome="performed", requested_by="operator"
    )
    assert "[action=follow outcome=performed by=operator]" in format_line(acted_line(operator))
