"""The memory guard: above a resident-memory ceiling the process serves less instead of being killed.

While the process's resident memory (RSS) is above `memory_ceiling_mb`, the voice bridge refuses new plugin
connections (close 1013), new players (`try_again_later` error) and new voice pages (close 1013), each with the
reason; players already in are served as before. The process shows as degraded (not failed) in `/healthz` and
`npc-host status` until its memory is back under 95% of the ceiling (a process hovering at the ceiling does not flip
in and out every second). Entering and leaving that state is logged, refusals
once a minute with their count; `npc_host_memory_resident_bytes`, `npc_host_memory_ceiling_bytes` and
`npc_host_memory_refused_total{what}` are in /metrics.

RSS is read from /proc/self/statm (one small read) once a second by `watch`, never per frame or per message. The
default ceiling is 80% of the memory this process may use: the cgroup's limit (a container's `mem_limit`, systemd's
`MemoryMax=`) or the machine's RAM, whichever is lower. The rest is headroom for what is already being served while
new work is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from host import metrics
from host.log_window import LogWindow
from host.roles.health import HealthBoard

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
RECOVER_SHARE = 0.95  # of the ceiling: refusing ends below this
REFUSALS_LOGGED_EVERY_S = 60.0  # per kind refused (connection, player, voice page), with the count meanwhile
DEFAULT_SHARE = 0.8  # of the cgroup limit or the RAM: the ceiling when none is set
CONDITION = "memory"  # its name among the process's degraded conditions (host/roles/health.py)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_MB = 2**20


def resident_bytes() -> int | None:
    """This process's resident memory; None where /proc is not there (the guard then never refuses)."""
    try:
        with open("/proc/self/statm", "rb") as statm:  # "size resident shared ..." in pages
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2, else v1); None when unlimited or unreadable."""
    candidates = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):  # v2: the process's own group, below the mount point
                candidates.insert(0, root / line[3:].lstrip("/") / "memory.max")
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)  # v1 writes a huge number for "no limit": the RAM below is the lower then
        return None  # "max": no limit
    return None


def _total_ram() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * _PAGE_BYTES
    except (OSError, ValueError):
        return None


def default_ceiling_bytes() -> int | None:
    """80% of the lower of the cgroup memory limit and the machine's RAM (None when neither is known)."""
    known = [limit for limit in (_cgroup_limit(), _total_ram()) if limit]
    return int(min(known) * DEFAULT_SHARE) if known else None


def ceiling_bytes(setting_mb: int | None) -> int | None:
    """The ceiling for the `memory_ceiling_mb` setting: unset = the default, 0 = none."""
    if setting_mb is None:
        return default_ceiling_bytes()
    return setting_mb * _MB if setting_mb > 0 else None


class MemoryGuard:
    """`refusal()` says why new work is refused while the process is above its ceiling, else None; `watch` keeps
    the reading current. `ceiling` None: never refuses."""

    def __init__(self, ceiling: int | None, *, board: HealthBoard | None = None) -> None:
        self.ceiling = ceiling
        self.resident: int | None = None
        self._board = board
        self._refusing: str | None = None
        self._refusals = LogWindow(REFUSALS_LOGGED_EVERY_S)

    @property
    def over(self) -> bool:
        return self._refusing is not None

    def refusal(self) -> str | None:
        """Why new connections, players and voice pages are refused now (None: they are welcome)."""
        return self._refusing

    def check(self) -> None:
        """Read the resident memory once and enter or leave the refusing state."""
        resident = self.resident = resident_bytes()
        if resident is None:
            return
        metrics.MEMORY_RESIDENT_BYTES.set(resident)
        if self.ceiling is None:
            return
        metrics.MEMORY_CEILING_BYTES.set(self.ceiling)
        if resident > self.ceiling:
            first = self._refusing is None
            self._refusing = (
                f"the host is short of memory ({resident // _MB} MB resident, ceiling {self.ceiling // _MB} MB); "
                "try again later"
            )
            if first:
                log.warning(
                    "memory: %d MB resident, above the ceiling of %d MB (NPC_HOST_MEMORY_CEILING_MB): refusing new "
                    "connections, players and voice pages until it is back under (who is connected is still served)",
                    resident // _MB,
                    self.ceiling // _MB,
                )
            if self._board is not None:
                self._board.degrade(CONDITION, self._refusing.removesuffix("; try again later"))
        elif self._refusing is not None and resident < self.ceiling * RECOVER_SHARE:
            self._refusing = None
            log.warning(
                "memory: %d MB resident, back under the ceiling of %d MB: newcomers are welcome again",
                resident // _MB,
                self.ceiling // _MB,
            )
            if self._board is not None:
                self._board.recover(CONDITION)

    def refused(self, what: str) -> None:
        """Count one refusal of `what` (connection, player, voice_page); logged once a minute with the count."""
        metrics.MEMORY_REFUSED.labels(what=what).inc()
        swallowed = self._refusals.due(what)
        if swallowed is not None:
            log.warning(
                "memory: refused a new %s: %s (%d more refused since the last such line)",
                what.replace("_", " "),
                self._refusing or "short of memory",
                swallowed,
            )

    async def watch(self, stop: asyncio.Event, interval_s: float = CHECK_EVERY_S) -> None:
        """Check every `interval_s` until `stop`."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
        if self._board is not None:
            self._board.recover(CONDITION)
