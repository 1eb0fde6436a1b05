"""The one "ready" line of `npc-host run`: printed when every listener is up and every model has loaded.

`run_roles` says up front what it waits for (`expect`): the voice bridge when the gateway runs, the speech models when
the speech role runs, each server's persona warm-up when the brain runs. Each part reports `listening(name, url)` or
`done(name)`, also when it failed (the failure is logged by its owner; the ready line then says what is missing).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("host.run")


class StartupProgress:
    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._waiting: set[str] = set()
        self._failed: list[str] = []
        self.addresses: dict[str, str] = {}
        self.announced = False

    def expect(self, *parts: str) -> None:
        self._waiting.update(parts)

    def listening(self, part: str, url: str) -> None:
        """`part` accepts connections at `url`."""
        self.addresses[part] = url
        self.done(part)

    def done(self, part: str, *, failed: bool = False) -> None:
        if failed:
            self._failed.append(part)
        self._waiting.discard(part)
        if not self._waiting and not self.announced:
            self.announced = True
            log.info("%s", self.ready_line())

    def ready_line(self) -> str:
        where = "; ".join(f"{part} {url}" for part, url in self.addresses.items()) or "no listeners"
        failed = f" (NOT ready: {', '.join(self._failed)}; see the errors above)" if self._failed else ""
        return f"ready in {time.perf_counter() - self._started:.1f} s: {where}{failed}"
