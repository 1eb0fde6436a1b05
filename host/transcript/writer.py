"""Appending lines to `transcripts/<server>/<YYYY-MM-DD>.log`, one file per UTC day.

Durability policy: every line goes to the kernel in a single `write` on an `O_APPEND` descriptor as soon as it is
appended, so readers (the note watcher, `tail -f`) see it at once, a crash of the host loses nothing, and lines from
concurrent tasks or other processes never interleave. `fsync` runs at most once per `fsync_interval_s`, at day
rollover and on close: a power cut may lose the last second of lines, which the database also holds.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType

from pydantic import TypeAdapter

from host.profiles.schema import ServerName
from host.transcript.grammar import format_line
from host.transcript.lines import TranscriptLine

_server_name: TypeAdapter[str] = TypeAdapter(ServerName)


def transcript_path(root: Path, server: str, day: date) -> Path:
    """The file holding `server`'s lines of UTC day `day`. The server name is checked: it becomes a directory."""
    return root / _server_name.validate_python(server) / f"{day.isoformat()}.log"


def now_utc() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TranscriptWriter:
    """The one writer of a server's transcript in this process: create one per server and share it."""

    def __init__(self, root: Path, server: str, *, fsync_interval_s: float = 1.0) -> None:
        self._root = root
        self._server = _server_name.validate_python(server)
        self._fsync_interval_s = fsync_interval_s
        self._lock = asyncio.Lock()
        self._fd: int | None = None
        self._day: date | None = None
        self._last_fsync = 0.0

    async def append(self, *lines: TranscriptLine) -> list[TranscriptLine]:
        """Write `lines` in one write (so a crash never keeps half of an exchange), stamping each with the current
        time if it has none; they go to the file of the first line's day. Returns the lines as written."""
        now = now_utc()
        stamped = [line if line.ts is not None else line.model_copy(update={"ts": now}) for line in lines]
        if not stamped:
            return stamped
        day = stamped[0].ts.date() if stamped[0].ts is not None else now.date()
        data = "".join(format_line(line) + "\n" for line in stamped).encode("utf-8")
        async with self._lock:
            await asyncio.to_thread(self._write, day, data)
        return stamped

    async def aclose(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close)

    async def __aenter__(self) -> TranscriptWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _write(self, day: date, data: bytes) -> None:
        fd = self._open(day)
        size = os.fstat(fd).st_size
        # A hand edit may have left the file without a final newline; never glue our line onto it.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        while data:
            data = data[os.write(fd, data) :]
        if time.monotonic() - self._last_fsync >= self._fsync_interval_s:
            os.fsync(fd)
            self._last_fsync = time.monotonic()

    def _open(self, day: date) -> int:
        path = transcript_path(self._root, self._server, day)
        if self._fd is not None and self._day == day and self._still_at(path, self._fd):
            return self._fd
        self._close()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._day = day
        return self._fd

    @staticmethod
    def _still_at(path: Path, fd: int) -> bool:
        """False when an editor replaced or removed the file since we opened it: reopen, or lines go nowhere."""
        try:
            return path.stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _close(self) -> None:
        if self._fd is None:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._day = None
