"""Paging back through a server's transcript files, newest first, with the page's NPC and player filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from host.admin.lines import ViewLine, view_line
from host.transcript.reader import read_transcript
from host.transcript.writer import transcript_path

MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    lines: list[ViewLine]  # oldest first, as the page shows them
    before: str | None  # the cursor of the next older page; None at the first line ever written


def _days(root: Path, server: str) -> list[date]:
    folder = transcript_path(root, server, date.today()).parent
    days = []
    for path in folder.glob("*.log"):
        try:
            days.append(date.fromisoformat(path.stem))
        except ValueError:
            continue  # not a day's file (an editor's backup): not ours to show
    return sorted(days, reverse=True)


def parse_cursor(cursor: str) -> tuple[date, int]:
    """`2026-12-03:41` -> (that day, line 41); a ValueError names what is wrong."""
    day, _, lineno = cursor.partition(":")
    try:
        return date.fromisoformat(day), int(lineno)
    except ValueError:
        raise ValueError(f"cursor {cursor!r} is not <YYYY-MM-DD>:<line>") from None


async def page(
    root: Path,
    server: str,
    *,
    before: str | None = None,
    limit: int = 50,
    npc: str | None = None,
    player: str | None = None,
) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    start = parse_cursor(before) if before else None
    found: list[ViewLine] = []
    for day in _days(root, server):
        if start is not None and day > start[0]:
            continue
        parsed = await read_transcript(transcript_path(root, server, day))
        for parsed_line in reversed(parsed.lines):
            if start is not None and day == start[0] and parsed_line.lineno >= start[1]:
                continue
            line = view_line(parsed_line.line, f"{day.isoformat()}:{parsed_line.lineno}")
            if matches(line, npc, player):
                found.append(line)
                if len(found) == limit:
                    return Page(list(reversed(found)), line.ref)
    return Page(list(reversed(found)), None)


def matches(line: ViewLine, npc: str | None, player: str | None) -> bool:
    return (not npc or line.npc == npc) and (not player or line.player == player)
