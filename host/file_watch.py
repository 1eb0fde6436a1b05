"""Change notifications for a folder, falling back to polling when the system cannot watch it.

Linux allows 128 inotify instances per user by default; browsers, editors and other hosts share them. When none is
left, watchfiles cannot create its watcher and raises: hot reload and the note watcher would end there. Polling
costs a directory scan a second instead, and running out of a resource degrades, never ends a role.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from watchfiles import awatch
from watchfiles._rust_notify import WatchfilesRustInternalError

log = logging.getLogger(__name__)

POLL_DELAY_MS = 1000


async def watch_changes(path: Path, **options: Any) -> AsyncIterator[set[tuple[Any, str]]]:
    """`watchfiles.awatch(path, **options)`, or the same by polling once the system refuses a watcher."""
    try:
        async for changes in awatch(path, **options):
            yield changes
        return
    except WatchfilesRustInternalError as exc:
        log.warning("cannot watch %s for changes (%s); polling it every %d ms instead", path, exc, POLL_DELAY_MS)
    async for changes in awatch(path, force_polling=True, poll_delay_ms=POLL_DELAY_MS, **options):
        yield changes
