"""Picks up note lines (`NOTE @bram: ...`) appended to a server's transcript and delivers them as `AdminNote` events.

It follows the current UTC day's file and finishes yesterday's after midnight. Progress is kept on disk (byte offset
and a count of each note already delivered), so a restart delivers only notes it has not delivered before. An
editor that rewrites the file (new inode, shorter file, or changed bytes before the offset) makes it re-read the whole
file and deliver only notes beyond those it already delivered. A last line without a newline is taken once it stayed
unchanged over one poll (editors that save without a final newline). Event ids derive from the note's place in the
file, so a note delivered twice after a crash has the same id and handlers drop the duplicate.

Run one watcher per server (in the process that owns the transcript); the admin page writes its notes as note lines
through `TranscriptWriter`, and they arrive here like hand-written ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from host.atomic_json import read_model, write_model
from host.events import AdminNote
from host.file_watch import watch_changes
from host.log_window import LogWindow
from host.transcript.grammar import is_note_line
from host.transcript.lines import NoteLine
from host.transcript.reader import TranscriptSyntaxError, parse_one
from host.transcript.writer import now_utc, transcript_path

log = logging.getLogger(__name__)

NoteHandler = Callable[[AdminNote], Awaitable[None]]
HAND_WRITTEN_AUTHOR = "transcript"
_ANCHOR_BYTES = 64


class _FileProgress(BaseModel):
    inode: int
    offset: int = 0
    newlines: int = 0
    anchor: str = ""  # sha256 of the bytes just before `offset`: tells an in-place rewrite from an append
    counts: dict[str, int] = {}  # note fingerprint -> occurrences up to `offset`
    delivered: dict[str, int] = {}  # note fingerprint -> occurrences delivered (survives rewrites)


class _WatchState(BaseModel):
    version: Literal[1] = 1
    files: dict[str, _FileProgress] = {}


@dataclass(frozen=True)
class _Chunk:
    inode: int
    size: int
    start: int  # file offset of data[0]
    data: bytes
    rewritten: bool


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_chunk(path: Path, progress: _FileProgress | None) -> _Chunk:
    with path.open("rb") as file:
        info = os.fstat(file.fileno())
        if progress is not None and info.st_ino == progress.inode and info.st_size >= progress.offset:
            base = max(0, progress.offset - _ANCHOR_BYTES)
            file.seek(base)
            data = file.read()
            if _digest(data[: progress.offset - base]) == progress.anchor:
                return _Chunk(info.st_ino, info.st_size, base, data, rewritten=False)
        file.seek(0)
        return _Chunk(info.st_ino, info.st_size, 0, file.read(), rewritten=True)


class NoteWatcher:
    def __init__(
        self,
        root: Path,
        server: str,
        state_path: Path,
        *,
        poll_s: float = 0.5,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._root = root
        self._server = server
        self._directory = transcript_path(root, server, clock().date()).parent
        self._state_path = state_path
        self._poll_ms = int(poll_s * 1000)
        self._clock = clock
        self._state = _WatchState()
        self._tails: dict[str, tuple[int, int]] = {}  # file -> (inode, size) when an unterminated line was seen
        self._stop = asyncio.Event()
        self._loaded = False
        self._errors = LogWindow(60.0)

    async def run(self, deliver: NoteHandler) -> None:
        """Deliver new notes until `stop()`. A failing `deliver` is retried on the next poll, from that note on."""
        while not self._stop.is_set():
            try:
                await self._watch(deliver)
            except OSError as exc:
                # Out of file handles or inotify watches, a folder gone or unreadable: notes wait, the role lives on.
                self._report(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._poll_ms / 1000)

    async def _watch(self, deliver: NoteHandler) -> None:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        if not self._loaded:
            loaded: _WatchState | None = await asyncio.to_thread(read_model, self._state_path, _WatchState)
            self._state, self._loaded = loaded or _WatchState(), True
        await self._scan(deliver)
        async for _changes in watch_changes(
            self._directory,
            stop_event=self._stop,
            debounce=200,
            rust_timeout=self._poll_ms,
            yield_on_timeout=True,
            recursive=False,
        ):
            await self._scan(deliver)

    def _report(self, exc: OSError) -> None:
        swallowed = self._errors.due(type(exc).__name__)
        if swallowed is not None:
            log.error(
                "note watcher of %s: %s; retrying every poll (%d more since the last such line)",
                self._directory,
                exc,
                swallowed,
            )

    def stop(self) -> None:
        self._stop.set()

    async def _scan(self, deliver: NoteHandler) -> None:
        today = self._clock().date()
        names = [f"{day.isoformat()}.log" for day in (today - timedelta(days=1), today)]
        changed = False
        for name in names:
            try:
                changed |= await self._scan_file(self._directory / name, deliver)
            except FileNotFoundError:
                continue  # no such day yet, or an editor caught between deleting and rewriting the file
            except OSError as exc:  # out of file handles, no permission: that file waits for the next poll
                self._report(exc)
        for stale in set(self._state.files) - set(names):
            del self._state.files[stale]
            changed = True
        for stale in set(self._tails) - set(names):
            del self._tails[stale]  # one entry per day would pile up in a host that runs for months
        if changed:
            await asyncio.to_thread(write_model, self._state_path, self._state)

    async def _scan_file(self, path: Path, deliver: NoteHandler) -> bool:
        old = self._state.files.get(path.name)
        chunk = await asyncio.to_thread(_read_chunk, path, old)
        if chunk.rewritten or old is None:
            if old is not None:
                log.info("%s was rewritten; re-reading it for notes not delivered yet", path)
            progress = _FileProgress(inode=chunk.inode, delivered=old.delivered if old else {})
        else:
            progress = old.model_copy(deep=True)
        data, cursor = chunk.data, progress.offset - chunk.start
        while (end := data.find(b"\n", cursor)) != -1:
            if not await self._consume(data[cursor:end], path, progress, deliver):
                break
            cursor = end + 1
            progress.newlines += 1
            progress.offset = chunk.start + cursor
        else:
            tail_key = (chunk.inode, chunk.size)
            settled = cursor < len(data) and self._tails.get(path.name) == tail_key
            if settled and await self._consume(data[cursor:], path, progress, deliver):
                progress.offset = chunk.size
                cursor = len(data)
            self._tails[path.name] = tail_key
        progress.anchor = _digest(data[max(0, cursor - _ANCHOR_BYTES) : cursor])
        self._state.files[path.name] = progress
        return progress != old

    async def _consume(self, raw: bytes, path: Path, progress: _FileProgress, deliver: NoteHandler) -> bool:
        """Handle one line; False when delivering its note failed (the line is left for the next poll)."""
        if not is_note_line(raw.decode("utf-8", errors="replace")):
            return True
        try:
            line = parse_one(raw, path, progress.newlines + 1)
        except TranscriptSyntaxError as exc:
            log.warning("note not delivered: %s", exc)
            return True
        if not isinstance(line, NoteLine):
            return True
        fingerprint = _digest(f"{line.npc}\0{line.author}\0{line.ts}\0{line.text}".encode())[:24]
        count = progress.counts.get(fingerprint, 0) + 1
        if count > progress.delivered.get(fingerprint, 0):
            note = AdminNote(
                id=_digest(f"{self._server}/{path.name}/{fingerprint}/{count}".encode())[:32],
                server=self._server,
                npc=line.npc,
                author=line.author or HAND_WRITTEN_AUTHOR,
                text=line.text,
                ts=line.ts.timestamp() if line.ts else time.time(),
            )
            try:
                await deliver(note)
            except Exception:
                log.exception("delivering the note for %s from %s failed; retrying on the next poll", line.npc, path)
                return False
            progress.delivered[fingerprint] = count
        progress.counts[fingerprint] = count
        return True


def watch_state_path(data_dir: Path, server: str) -> Path:
    """Where the watcher of `server` keeps its progress."""
    return data_dir / "transcript-watch" / f"{server}.json"
