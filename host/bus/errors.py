"""Bus errors: data with a machine code and a message that never holds a password."""

from __future__ import annotations

from host.errors import NpcHostError


class BusError(NpcHostError):
    code = "bus"


class BusConnectionError(BusError):
    """The hub cannot be reached at start (wrong URL, server down); the message names host:port, never a password."""

    code = "bus_connect"


class BusUnavailableError(BusError):
    """The connection was lost and did not come back in time."""

    code = "bus_unavailable"
