"""Logging that cannot flood: a repeating condition (a refused address, running out of file handles) is logged once
per window with how often it happened meanwhile, instead of once per occurrence."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

# Keys remembered at most: an attacker cycling through addresses must not grow this without end either.
_MAX_KEYS = 4096


class LogWindow:
    """`due(key)` says whether `key` may be logged now: once per `window_s` seconds for each key."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._last: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()  # key -> (logged at, swallowed since)

    def due(self, key: Hashable = None) -> int | None:
        """None while `key` was logged within the window; else how many occurrences were not logged since then."""
        now = self._clock()
        logged_at, swallowed = self._last.get(key, (float("-inf"), 0))
        if now - logged_at < self.window_s:
            self._last[key] = (logged_at, swallowed + 1)
            return None
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > _MAX_KEYS:
            self._last.popitem(last=False)
        return swallowed
