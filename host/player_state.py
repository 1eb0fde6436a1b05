"""Per-player state that expires with the player: a value not set again within `idle_s` is forgotten (the player left
or went quiet), and at most `max_players` are kept (the least recently set go first), so a long-running host with
thousands of passing players holds only the ones still around."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PLAYER_IDLE_S = 600.0  # ten minutes without a word: what the host knew about the player's last exchange is stale
MAX_PLAYERS = 10_000


class PlayerMemory(Generic[K, V]):
    def __init__(
        self, idle_s: float = PLAYER_IDLE_S, max_players: int = MAX_PLAYERS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s = idle_s
        self.max_players = max_players
        self._clock = clock
        self._values: OrderedDict[K, tuple[float, V]] = OrderedDict()  # least recently set first

    def __setitem__(self, key: K, value: V) -> None:
        now = self._clock()
        self._values[key] = (now, value)
        self._values.move_to_end(key)
        self._expire(now)

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: V) -> V: ...
    def get(self, key: K, default: V | None = None) -> V | None:
        kept = self._values.get(key)
        if kept is None or self._clock() - kept[0] >= self.idle_s:
            return default
        return kept[1]

    def __contains__(self, key: object) -> bool:
        kept = self._values.get(key)  # type: ignore[arg-type]
        return kept is not None and self._clock() - kept[0] < self.idle_s

    def forget(self, key: K) -> None:
        self._values.pop(key, None)

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._values)

    def _expire(self, now: float) -> None:
        while self._values:
            key, (set_at, _) = next(iter(self._values.items()))
            if now - set_at < self.idle_s and len(self._values) <= self.max_players:
                return
            del self._values[key]
