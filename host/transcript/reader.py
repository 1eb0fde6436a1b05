"""Reading transcript files back: every good line, and a `path:line: reason` error for each bad one.

A malformed line never stops the lines after it from being read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from host.errors import NpcHostError
from host.transcript.grammar import LineSyntaxError, parse_line
from host.transcript.lines import TranscriptLine


class TranscriptSyntaxError(NpcHostError):
    code = "transcript_syntax"

    def __init__(self, path: Path | str, lineno: int, reason: str) -> None:
        super().__init__(f"{path}:{lineno}: {reason}")
        self.path = str(path)
        self.lineno = lineno
        self.reason = reason


@dataclass(frozen=True)
class ParsedLine:
    lineno: int
    line: TranscriptLine


@dataclass
class ParseResult:
    lines: list[ParsedLine] = field(default_factory=list)
    errors: list[TranscriptSyntaxError] = field(default_factory=list)


def parse_one(raw: bytes, path: Path | str, lineno: int) -> TranscriptLine | None:
    """One raw line (without its newline) of file `path`; raises `TranscriptSyntaxError` naming file and line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptSyntaxError(path, lineno, f"not UTF-8 (byte {exc.start})") from None
    try:
        return parse_line(text)
    except LineSyntaxError as exc:
        raise TranscriptSyntaxError(path, lineno, str(exc)) from None


def parse_bytes(data: bytes, path: Path | str, first_lineno: int = 1) -> ParseResult:
    """Parse complete lines; `first_lineno` numbers them when `data` starts inside a file."""
    result = ParseResult()
    for offset, raw in enumerate(data.split(b"\n")):
        lineno = first_lineno + offset
        try:
            line = parse_one(raw, path, lineno)
        except TranscriptSyntaxError as exc:
            result.errors.append(exc)
            continue
        if line is not None:
            result.lines.append(ParsedLine(lineno, line))
    return result


async def read_transcript(path: Path) -> ParseResult:
    """Read and parse in a thread: a day's file is megabytes of regex work, too long to hold the event loop."""
    return await asyncio.to_thread(_read_and_parse, path)


def _read_and_parse(path: Path) -> ParseResult:
    return parse_bytes(path.read_bytes(), path)
