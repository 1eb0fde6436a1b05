"""Transcript lines to text and back. The grammar is specified in docs/transcript.md; keep the two in step.

    2026-11-25T12:00:01.123Z chat Alice @(1.0,64.0,2.5) > bram: "Any rooms free?"
    2026-11-25T12:00:02.456Z npc bram > Alice [turn=ab12 emotion=happy first_audio_ms=512]: "Aye, one left."
    NOTE @bram: He owes Alice a free ale.

Spoken text is always double-quoted and escaped, so nothing a player says can end its line or look like a note.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

from pydantic import ValidationError

from host.transcript.escaping import EscapeError, escape_bare, quote, unescape_bare, unquote
from host.transcript.lines import LinePosition, LineSource, NoteLine, SpokenLine, TranscriptLine

_OVERWORLD = "minecraft:overworld"
_BARE_NAME = re.compile(r"[A-Za-z0-9_.*-]+")
_BARE_VALUE = re.compile(r'[^\s\]"\\]+')
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_NAME = rf"(?:[A-Za-z0-9_.*-]+|{_QUOTED})"
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TAG = rf"[a-z][a-z0-9_]*(?:=(?:[^\s\]\"\\]+|{_QUOTED}))?"
_TAGS = rf"\[(?P<tags>{_TAG}(?: {_TAG})*)\]"
_TIMESTAMP = re.compile(r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) +")
_SPOKEN = re.compile(
    rf"(?P<source>[a-z]+) (?P<speaker>{_NAME})"
    rf"(?: @\((?P<x>{_NUM}),(?P<y>{_NUM}),(?P<z>{_NUM})(?:,(?P<dim>[a-z0-9_.-]+:[a-z0-9_./-]+))?\))?"
    rf"(?: > (?P<addressee>{_NAME}))?"
    rf"(?: {_TAGS})?"
    rf": (?P<text>{_QUOTED})"
)
# Typed by hand, so spacing and the keyword's case are forgiven; the NPC id is matched case-insensitively.
_NOTE = re.compile(rf"NOTE +@(?P<npc>[A-Za-z][A-Za-z0-9_]*)(?: +{_TAGS})? *:(?P<text>.*)", re.IGNORECASE)
_NOTE_START = re.compile(r"NOTE\b", re.IGNORECASE)
_TAG_ITEM = re.compile(rf"(?P<key>[a-z][a-z0-9_]*)(?:=(?P<value>[^\s\]\"\\]+|{_QUOTED}))?")
_SOURCES: tuple[str, ...] = get_args(LineSource)


class LineSyntaxError(ValueError):
    """One line does not follow the grammar. `reason` says what is wrong, for `path:line: reason` messages."""


def format_timestamp(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def format_line(line: TranscriptLine) -> str:
    """One line of text, without the trailing newline."""
    prefix = f"{format_timestamp(line.ts)} " if line.ts is not None else ""
    if isinstance(line, NoteLine):
        tags = f" [by={_format_value(line.author)}]" if line.author is not None else ""
        return f"{prefix}NOTE @{line.npc}{tags}: {escape_bare(line.text)}"
    parts = [f"{prefix}{line.source} {_format_name(line.speaker)}"]
    if line.position is not None:
        pos = line.position
        dim = "" if pos.dimension == _OVERWORLD else f",{pos.dimension}"
        parts.append(f" @({pos.x!r},{pos.y!r},{pos.z!r}{dim})")
    if line.addressee is not None:
        parts.append(f" > {_format_name(line.addressee)}")
    if line.tags:
        parts.append(" [" + " ".join(k if v == "" else f"{k}={_format_value(v)}" for k, v in line.tags.items()) + "]")
    parts.append(f": {quote(line.text)}")
    return "".join(parts)


def parse_line(raw: str) -> TranscriptLine | None:
    """The line `raw` holds, or None for a blank or `#` comment line. Raises `LineSyntaxError`."""
    body = raw.strip(" \t\r\n")
    if not body or body.startswith("#"):
        return None
    ts: datetime | None = None
    stamp = _TIMESTAMP.match(body)
    if stamp is not None:
        try:
            ts = datetime.strptime(stamp["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            raise LineSyntaxError(f"timestamp {stamp['ts']!r} is not a real UTC date and time") from None
        body = body[stamp.end() :]
    elif body[:1].isdigit():
        raise LineSyntaxError("timestamp must look like 2026-11-25T12:00:01.123Z (UTC, milliseconds)")
    try:
        if _NOTE_START.match(body):
            return _parse_note(body, ts)
        return _parse_spoken(body, ts)
    except (EscapeError, ValidationError) as exc:
        raise LineSyntaxError(_describe(exc)) from None


def is_note_line(raw: str) -> bool:
    """Cheap test used to skip spoken lines when only notes matter (the file watcher)."""
    body = raw.lstrip(" \t")
    stamp = _TIMESTAMP.match(body)
    return _NOTE_START.match(body[stamp.end() :] if stamp else body) is not None


def _parse_note(body: str, ts: datetime | None) -> NoteLine:
    match = _NOTE.fullmatch(body)
    if match is None:
        raise LineSyntaxError("a note looks like `NOTE @npc_id: text`")
    author = None
    for key, value in _parse_tags(match["tags"]).items():
        if key != "by":
            raise LineSyntaxError(f"unknown note tag {key!r} (only `by` is allowed)")
        author = value
    return NoteLine(ts=ts, npc=match["npc"].lower(), author=author, text=unescape_bare(match["text"]))


def _parse_spoken(body: str, ts: datetime | None) -> SpokenLine:
    source = body.split(" ", 1)[0]
    if source not in _SOURCES:
        raise LineSyntaxError(f"unknown line kind {source!r} (expected one of {', '.join(_SOURCES)}, or NOTE)")
    match = _SPOKEN.fullmatch(body)
    if match is None:
        if not body.endswith('"') or ': "' not in body:
            raise LineSyntaxError('the text must end the line as a double-quoted string after `: "`')
        raise LineSyntaxError('expected `source speaker [@(x,y,z)] [> addressee] [[tags]]: "text"`')
    position = None
    if match["x"] is not None:
        position = LinePosition(
            x=float(match["x"]), y=float(match["y"]), z=float(match["z"]), dimension=match["dim"] or _OVERWORLD
        )
    addressee = match["addressee"]
    return SpokenLine(
        ts=ts,
        source=source,
        speaker=_parse_name(match["speaker"]),
        position=position,
        addressee=_parse_name(addressee) if addressee is not None else None,
        tags=_parse_tags(match["tags"]),
        text=unquote(match["text"]),
    )


def _parse_tags(text: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in _TAG_ITEM.finditer(text or ""):
        key, value = item["key"], item["value"]
        if key in tags:
            raise LineSyntaxError(f"tag {key!r} appears twice")
        tags[key] = "" if value is None else _parse_name(value)
    return tags


def _format_name(name: str) -> str:
    return name if _BARE_NAME.fullmatch(name) else quote(name)


def _format_value(value: str) -> str:
    return value if _BARE_VALUE.fullmatch(value) else quote(value)


def _parse_name(token: str) -> str:
    return unquote(token) if token.startswith('"') else token


def _describe(exc: EscapeError | ValidationError) -> str:
    if isinstance(exc, EscapeError):
        return str(exc)
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return f"{field}: {first['msg']}" if field else str(first["msg"])
