"""Follow a server's `logs/latest.log` like `tail -F`: from its end, across rotation and truncation.

The log is a plain file the server appends to, so polling a few times a second is cheap and works on every OS and
file system (inotify does not see writes over NFS or into Docker volumes). File access runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

from host.log_window import LogWindow
from integrations.minecraft.log_formats import LogEvent, parse_log_line

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024
_READ_CHUNK = 256 * 1024


class LogTail:
    """Complete lines appended to `path` since the tail started. Not shared between tasks."""

    def __init__(self, path: Path, poll_interval_s: float = 0.2) -> None:
        self.path = path
        self.poll_interval_s = poll_interval_s
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self._started = False
        self._errors = LogWindow(60.0)

    async def open(self) -> None:
        """Mark the current end of the log: lines written after this call are read, nothing before it."""
        if not self._started:
            await asyncio.to_thread(self.poll)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def lines(self) -> AsyncGenerator[str, None]:
        try:
            while True:
                for line in await asyncio.to_thread(self.poll):
                    yield line
                await asyncio.sleep(self.poll_interval_s)
        finally:
            self.close()

    async def events(self) -> AsyncGenerator[LogEvent, None]:
        async for line in self.lines():
            event = parse_log_line(line)
            if event is not None:
                yield event

    def poll(self) -> list[str]:
        """Read what was appended since the last poll (blocking; `lines()` runs it in a thread). An unreadable log
        (out of file handles, no permission) is logged once a minute and tried again on the next poll."""
        started = self._started
        try:
            return self._poll()
        except OSError as exc:
            if self._file is None:
                self._started = started  # never opened: the first poll that opens it still starts at the end
            swallowed = self._errors.due(type(exc).__name__)
            if swallowed is not None:
                log.error(
                    "%s cannot be read: %s; retrying (%d more since the last such line)", self.path, exc, swallowed
                )
            return []

    def _poll(self) -> list[str]:
        first_poll, self._started = not self._started, True
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []  # server not started yet, or between rotation steps
        lines: list[str] = []
        if self._file is None or (stat.st_dev, stat.st_ino) != self._inode:
            try:
                fresh = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
            except FileNotFoundError:
                return []  # rotated away between stat and open: the next poll opens the new file
            if self._file is not None:
                # The old file's last lines, written before the rename; the server ended them.
                lines = self._split(self._file.read(), final=True)
                self.close()
            self._file = fresh
            opened = os.fstat(fresh.fileno())  # the file we really opened, not the one stat saw
            self._inode = (opened.st_dev, opened.st_ino)
            if first_poll:
                self._file.seek(0, os.SEEK_END)  # never replay old chat on start
        elif stat.st_size < self._file.tell():
            log.info("%s was truncated; reading it from the start", self.path)
            self._file.seek(0)
            self._partial = b""
        return lines + self._split(self._file.read(_READ_CHUNK))

    def _split(self, data: bytes, *, final: bool = False) -> list[str]:
        *complete, self._partial = (self._partial + data).split(b"\n")
        if final and self._partial:
            complete.append(self._partial)
            self._partial = b""
        if len(self._partial) > MAX_LINE_BYTES:
            log.warning("%s: dropping a line longer than %d bytes", self.path, MAX_LINE_BYTES)
            self._partial = b""
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in complete]
