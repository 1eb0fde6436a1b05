"""The transcript lines written since the advisor's last pass: read from the cursor (a day file and a byte offset,
kept in the database), complete lines only, at most `max_bytes` per pass so a transcript that grew by megabytes is
worked through over several passes instead of in one unbounded read.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from host.store.records import AdvisorCursor
from host.transcript.lines import SpokenLine, TranscriptLine
from host.transcript.reader import parse_bytes
from host.transcript.writer import transcript_path

log = logging.getLogger(__name__)

_DAY_FILE = re.compile(r"^\d{4}-\d\d-\d\d\.log$")


@dataclass(frozen=True)
class NewLines:
    lines: list[TranscriptLine]
    cursor: AdvisorCursor
    bytes_read: int
    bad_lines: int


def counts_for_advice(line: TranscriptLine) -> bool:
    """Lines the advisor reads and counts towards `after_lines`: not its own, not the host's bookkeeping."""
    return not (isinstance(line, SpokenLine) and line.source in ("advisor", "system"))


async def read_new_lines(root: Path, server: str, cursor: AdvisorCursor | None, max_bytes: int) -> NewLines:
    """Complete lines after `cursor` (None: from the oldest file), oldest first, and the cursor just past them."""
    return await asyncio.to_thread(_read, root, server, cursor, max_bytes)


def _day_files(root: Path, server: str) -> list[Path]:
    folder = transcript_path(root, server, date.min).parent  # the server's folder, its name checked
    try:
        return sorted(path for path in folder.iterdir() if _DAY_FILE.match(path.name))
    except FileNotFoundError:
        return []


def _read(root: Path, server: str, cursor: AdvisorCursor | None, max_bytes: int) -> NewLines:
    lines: list[TranscriptLine] = []
    bad = 0
    budget = max_bytes
    position = cursor
    files = [path for path in _day_files(root, server) if cursor is None or path.stem >= cursor.day]
    for index, path in enumerate(files):
        day = path.stem
        start = cursor.offset if cursor is not None and day == cursor.day else 0
        with path.open("rb") as file:
            file.seek(start)
            data = file.read(budget)
        complete = data[: data.rfind(b"\n") + 1]
        if len(data) < budget and index < len(files) - 1:
            # A later day has begun: nobody appends here any more, so a last line without a newline (typed by hand)
            # is complete; waiting for its newline would stall the advisor on this day for ever.
            complete = data
        if not complete and len(data) == budget and budget > 0:
            # A single line longer than the whole budget: skip it rather than stall on it forever.
            end = _line_end(path, start)
            log.warning("%s: a line at byte %d is longer than %d bytes; skipped", path, start, max_bytes)
            position = AdvisorCursor(day=day, offset=end)
            break
        parsed = parse_bytes(complete.rstrip(b"\n"), path) if complete else None
        if parsed is not None:
            lines.extend(item.line for item in parsed.lines)
            bad += len(parsed.errors)
            for error in parsed.errors[:3]:
                log.warning("advisor skips a bad transcript line: %s", error.message)
        position = AdvisorCursor(day=day, offset=start + len(complete))
        budget -= len(complete)
        if budget <= 0 or len(complete) < len(data):
            break  # out of budget, or the file's last line is still being written
    position = position or AdvisorCursor(day="", offset=0)
    consumed = max_bytes - budget
    return NewLines(lines, position, consumed, bad)


def _line_end(path: Path, start: int) -> int:
    with path.open("rb") as file:
        file.seek(start)
        offset = start
        while chunk := file.read(1 << 16):
            newline = chunk.find(b"\n")
            if newline >= 0:
                return offset + newline + 1
            offset += len(chunk)
        return offset
