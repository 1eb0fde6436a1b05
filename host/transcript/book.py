"""Every server's transcript writer in this process, plus the check that keeps a redelivered turn from being
written twice (delivery on the hub is at least once)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from host.transcript.lines import SpokenLine, TranscriptLine
from host.transcript.reader import read_transcript
from host.transcript.writer import TranscriptWriter, now_utc, transcript_path


class TranscriptBook:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._writers: dict[str, TranscriptWriter] = {}

    async def append(self, server: str, *lines: TranscriptLine) -> None:
        if server not in self._writers:
            self._writers[server] = TranscriptWriter(self.root, server)
        await self._writers[server].append(*lines)

    async def has_turn(self, server: str, turn_id: str) -> bool:
        """Whether today's or yesterday's file already holds the NPC line of `turn_id` (read only on redelivery)."""
        today = now_utc().date()
        for day in (today, today - timedelta(days=1)):
            try:
                parsed = await read_transcript(transcript_path(self.root, server, day))
            except FileNotFoundError:
                continue
            if any(_is_turn(parsed_line.line, turn_id) for parsed_line in parsed.lines):
                return True
        return False

    async def aclose(self) -> None:
        for writer in self._writers.values():
            await writer.aclose()
        self._writers.clear()


def _is_turn(line: TranscriptLine, turn_id: str) -> bool:
    return isinstance(line, SpokenLine) and line.tags.get("turn") == turn_id
