"""Who may open a connection to the bridge, decided when the TCP connection is accepted (before any byte is read).

- Unauthenticated connections (no accepted `hello` yet) are capped per address (a newcomer over the cap is refused)
  and in total (the oldest unauthenticated connection is closed to make room, so a slow flood from many addresses
  cannot lock a real plugin out: it sends its hello within milliseconds of connecting).
- Plugin connections past `hello` are capped in total.
- An address whose hellos failed `failed_hellos_per_address` times within `failed_hello_window_s` is refused at
  once for the rest of that window (token guessing), and logged once per window with the address, for fail2ban.
- Both caps are clipped to the process's open-file limit at start, so sockets can never take every file handle.

Refused connections are aborted without a handshake: no reply, no traceback, a counter in `DoorStats`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from host import metrics
from host.log_window import LogWindow
from proximity_audio.limits import BridgeLimits

log = logging.getLogger(__name__)

# Addresses with failed hellos remembered at most (the oldest forgotten first).
_MAX_TRACKED_ADDRESSES = 4096


@dataclass
class DoorStats:
    refused_per_address: int = 0
    refused_connections: int = 0
    refused_banned: int = 0
    evicted_unauthenticated: int = 0
    failed_hellos: int = 0


@dataclass(eq=False)
class Ticket:
    """One accepted TCP connection; `abort` closes it without a handshake."""

    address: str
    abort: Callable[[], None]
    authenticated: bool = False


@dataclass(frozen=True)
class DoorCaps:
    unauthenticated: int
    unauthenticated_per_address: int
    connections: int


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# The event loop accepts up to this many connections in one go before the door sees any of them (the listen backlog):
# their file handles must fit beside the capped ones, or accepting fails with EMFILE and pauses for a second.
ACCEPT_BURST = 64


def effective_caps(limits: BridgeLimits, file_limit: int) -> DoorCaps:
    """The configured caps, clipped so bridge sockets (and one burst of accepts) use at most half of the process's
    file handles (the models, the database, the hub and the transcripts need the rest)."""
    sockets = max(8, (file_limit - ACCEPT_BURST) // 2)
    unauthenticated = min(limits.max_unauthenticated, sockets // 2)
    return DoorCaps(
        unauthenticated=unauthenticated,
        unauthenticated_per_address=min(limits.max_unauthenticated_per_address, unauthenticated),
        connections=min(limits.max_connections, sockets - unauthenticated),
    )


@dataclass
class _Failures:
    window_start: float
    count: int = 0


@dataclass
class Door:
    limits: BridgeLimits
    caps: DoorCaps
    clock: Callable[[], float] = time.monotonic
    stats: DoorStats = field(default_factory=DoorStats)

    def __post_init__(self) -> None:
        self._waiting: OrderedDict[Ticket, None] = OrderedDict()  # unauthenticated, oldest first
        self._per_address: dict[str, int] = {}
        self._connections = 0
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._log = LogWindow(self.limits.failed_hello_window_s, self.clock)

    @property
    def unauthenticated(self) -> int:
        return len(self._waiting)

    @property
    def connections(self) -> int:
        return self._connections

    def admit(self, address: str, abort: Callable[[], None]) -> Ticket | None:
        """A TCP connection from `address` was accepted: its ticket, or None when it must be aborted."""
        if self._banned(address):
            self.stats.refused_banned += 1
            metrics.BRIDGE_REFUSED.labels(reason="banned").inc()
            return None
        if self._per_address.get(address, 0) >= self.caps.unauthenticated_per_address:
            self.stats.refused_per_address += 1
            metrics.BRIDGE_REFUSED.labels(reason="per_address").inc()
            self._warn(
                ("per-address", address),
                "bridge: refusing connections from %s: %d of its connections have not sent a hello",
                address,
                self.caps.unauthenticated_per_address,
            )
            return None
        if len(self._waiting) >= self.caps.unauthenticated:
            oldest = next(iter(self._waiting))
            self.stats.evicted_unauthenticated += 1
            metrics.BRIDGE_REFUSED.labels(reason="evicted").inc()
            self._warn(
                "evicting",
                "bridge: %d connections without a hello; closing the oldest ones to make room",
                self.caps.unauthenticated,
            )
            self.release(oldest)
            oldest.abort()
        ticket = Ticket(address, abort)
        self._waiting[ticket] = None
        self._per_address[address] = self._per_address.get(address, 0) + 1
        return ticket

    def authenticate(self, ticket: Ticket) -> bool:
        """The connection's hello was accepted: False when the plugin connections are at their cap."""
        if ticket.authenticated or ticket not in self._waiting:
            return ticket.authenticated
        if self._connections >= self.caps.connections:
            self.stats.refused_connections += 1
            metrics.BRIDGE_REFUSED.labels(reason="connections").inc()
            self._warn("connections", "bridge: %d plugin connections open; refusing more", self.caps.connections)
            return False
        self._forget_waiting(ticket)
        ticket.authenticated = True
        self._connections += 1
        return True

    def release(self, ticket: Ticket) -> None:
        """The connection closed (idempotent)."""
        if ticket.authenticated:
            ticket.authenticated = False
            self._connections -= 1
        elif ticket in self._waiting:
            self._forget_waiting(ticket)

    def hello_failed(self, address: str, why: str) -> None:
        """A hello from `address` was refused (wrong token or server name): counted towards its ban."""
        self.stats.failed_hellos += 1
        now = self.clock()
        failures = self._failures.get(address)
        if failures is None or now - failures.window_start >= self.limits.failed_hello_window_s:
            failures = self._failures[address] = _Failures(now)
            while len(self._failures) > _MAX_TRACKED_ADDRESSES:
                self._failures.popitem(last=False)
        failures.count += 1
        if failures.count == self.limits.failed_hellos_per_address:
            log.warning(
                "bridge: %s failed %d hellos within %.0f s (%s); refusing its connections for the rest of the window",
                address,
                failures.count,
                self.limits.failed_hello_window_s,
                why,
            )
        elif failures.count < self.limits.failed_hellos_per_address:
            self._warn(("failed", address), "bridge: refused a plugin from %s: %s", address, why)

    def _banned(self, address: str) -> bool:
        failures = self._failures.get(address)
        if failures is None or failures.count < self.limits.failed_hellos_per_address:
            return False
        return self.clock() - failures.window_start < self.limits.failed_hello_window_s

    def _forget_waiting(self, ticket: Ticket) -> None:
        del self._waiting[ticket]
        left = self._per_address[ticket.address] - 1
        if left:
            self._per_address[ticket.address] = left
        else:
            del self._per_address[ticket.address]

    def _warn(self, key: object, message: str, *args: object) -> None:
        swallowed = self._log.due(key)
        if swallowed is None:
            return
        if swallowed:
            message += f" ({swallowed} more since the last such line)"
        log.warning(message, *args)


class OutOfFileHandles:
    """An event loop exception handler: running out of file handles while accepting (EMFILE, ENFILE) is logged once
    per window instead of asyncio's traceback every second; asyncio itself pauses accepting for a second and retries.
    Everything else goes to the handler that was there before."""

    def __init__(self, loop: asyncio.AbstractEventLoop, window_s: float = 60.0) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self._log = LogWindow(window_s)
        self.count = 0

    def install(self) -> None:
        self._loop.set_exception_handler(self)

    def uninstall(self) -> None:
        if self._loop.get_exception_handler() == self:
            self._loop.set_exception_handler(self._previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and context.get("message") == "socket.accept() out of system resource":
            self.count += 1
            swallowed = self._log.due()
            if swallowed is not None:
                log.error(
                    "bridge: out of file handles (%s); new connections wait until some close (%d more since the "
                    "last such line). Raise the open-file limit (ulimit -n) or lower the bridge caps.",
                    exc.strerror or exc,
                    swallowed,
                )
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
