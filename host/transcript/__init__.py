"""The transcript file: one human-readable, append-only line per event, per server per UTC day (docs/transcript.md)."""

from host.transcript.from_events import admin_note_line, correction_line, player_said_line, turn_ended_line
from host.transcript.grammar import LineSyntaxError, format_line, parse_line
from host.transcript.lines import LinePosition, LineSource, NoteLine, SpokenLine, TranscriptLine
from host.transcript.reader import ParsedLine, ParseResult, TranscriptSyntaxError, parse_bytes, read_transcript
from host.transcript.watcher import NoteHandler, NoteWatcher, watch_state_path
from host.transcript.writer import TranscriptWriter, transcript_path

__all__ = [
    "LinePosition",
    "LineSource",
    "LineSyntaxError",
    "NoteHandler",
    "NoteLine",
    "NoteWatcher",
    "ParseResult",
    "ParsedLine",
    "SpokenLine",
    "TranscriptLine",
    "TranscriptSyntaxError",
    "TranscriptWriter",
    "admin_note_line",
    "correction_line",
    "format_line",
    "parse_bytes",
    "parse_line",
    "player_said_line",
    "read_transcript",
    "transcript_path",
    "turn_ended_line",
    "watch_state_path",
]
