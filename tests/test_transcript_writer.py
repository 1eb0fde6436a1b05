"""The transcript writer: whole lines from many tasks, one file per UTC day, robust to hand edits of the file."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from host.transcript import NoteLine, SpokenLine, TranscriptWriter, parse_bytes, read_transcript, transcript_path

DAY = datetime(2026, 11, 25, 23, 59, 59, 500000, tzinfo=UTC)


async def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    tasks, per_task = 40, 15
    # Long texts make a torn or interleaved write show up as a line that does not parse.
    filler = "ale and bread, " * 400

    async with TranscriptWriter(tmp_path, "village") as writer:

        async def speak(speaker: int) -> None:
            for n in range(per_task):
                await writer.append(
                    SpokenLine(ts=DAY, source="chat", speaker=f"P{speaker}", text=f"{speaker}/{n} {filler}\nend")
                )

        async with asyncio.TaskGroup() as group:
            for speaker in range(tasks):
                group.create_task(speak(speaker))

    result = await read_transcript(transcript_path(tmp_path, "village", DAY.date()))
    assert not result.errors
    said = sorted(parsed.line.text.split(" ", 1)[0] for parsed in result.lines)
    assert said == sorted(f"{s}/{n}" for s in range(tasks) for n in range(per_task))


async def test_lines_go_to_the_file_of_their_utc_day(tmp_path: Path) -> None:
    before = SpokenLine(ts=DAY, source="chat", speaker="Alice", text="last order")
    after = SpokenLine(
        ts=datetime(2026, 11, 26, 0, 0, 0, 1000, tzinfo=UTC), source="npc", speaker="bram", text="closed"
    )

    async with TranscriptWriter(tmp_path, "village") as writer:
        await writer.append(before)
        await writer.append(after)

    first = await read_transcript(tmp_path / "village" / "2026-11-25.log")
    second = await read_transcript(tmp_path / "village" / "2026-11-26.log")
    assert [p.line for p in first.lines] == [before]
    assert [p.line for p in second.lines] == [after]


async def test_unstamped_lines_get_the_current_time(tmp_path: Path) -> None:
    async with TranscriptWriter(tmp_path, "village") as writer:
        [written] = await writer.append(NoteLine(npc="bram", author="admin", text="Be kind to Alice."))

    assert written.ts is not None
    result = await read_transcript(transcript_path(tmp_path, "village", written.ts.date()))
    assert [p.line for p in result.lines] == [written]


async def test_a_hand_edit_without_final_newline_does_not_glue_lines(tmp_path: Path) -> None:
    path = transcript_path(tmp_path, "village", DAY.date())
    line = SpokenLine(ts=DAY, source="chat", speaker="Alice", text="hello")

    async with TranscriptWriter(tmp_path, "village") as writer:
        await writer.append(line)
        with path.open("a") as file:
            file.write("NOTE @bram: typed without a newline")
        await writer.append(line)

    result = parse_bytes(path.read_bytes(), path)
    assert not result.errors
    assert [type(p.line).__name__ for p in result.lines] == ["SpokenLine", "NoteLine", "SpokenLine"]


async def test_writer_follows_an_editor_that_replaced_the_file(tmp_path: Path) -> None:
    path = transcript_path(tmp_path, "village", DAY.date())
    line = SpokenLine(ts=DAY, source="chat", speaker="Alice", text="hello")

    async with TranscriptWriter(tmp_path, "village") as writer:
        await writer.append(line)
        # What vim and most editors do on save: write a new file and rename it over the old one.
        replacement = path.with_suffix(".swp")
        replacement.write_text(path.read_text() + "NOTE @bram: added in an editor\n")
        os.replace(replacement, path)
        await writer.append(line)

    result = await read_transcript(path)
    assert [type(p.line).__name__ for p in result.lines] == ["SpokenLine", "NoteLine", "SpokenLine"]


def test_server_names_cannot_escape_the_transcripts_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pattern"):
        transcript_path(tmp_path, "../etc", date(2026, 11, 25))


async def test_an_exchange_is_written_in_one_piece(tmp_path: Path) -> None:
    """The player's line and the NPC's answer go out in one write: a crash never keeps one without the other."""
    said = SpokenLine(ts=DAY, source="chat", speaker="Alice", addressee="bram", text="Any rooms?")
    answer = SpokenLine(ts=DAY, source="npc", speaker="bram", addressee="Alice", tags={"turn": "t1"}, text="One left.")
    path = transcript_path(tmp_path, "village", DAY.date())
    writes: list[bytes] = []
    async with TranscriptWriter(tmp_path, "village") as writer:
        original = writer._write

        def counting(day: date, data: bytes) -> None:
            writes.append(data)
            original(day, data)

        writer._write = counting  # type: ignore[method-assign]
        await writer.append(said, answer)

    assert len(writes) == 1
    assert [p.line for p in (await read_transcript(path)).lines] == [said, answer]
