"""Refused operator actions on the admin app go on record, as refused `!npc` commands do in game: who tried what, from
where, and why it was refused. A hostile page can send refused requests without end, so each (who, address, reason)
is logged once per window with how many were refused meanwhile."""

from __future__ import annotations

import logging

from starlette.requests import HTTPConnection

from host.admin.context import AdminContext

log = logging.getLogger(__name__)

_MAX_PATH_CHARS = 200


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client is not None else "unknown"


def log_refused(connection: HTTPConnection, who: str, why: str) -> None:
    """`who`: the signed-in user, or "anonymous". The path and the user are logged with repr, which escapes control
    characters and line separators, so a crafted URL cannot forge a log line."""
    address = client_address(connection)
    swallowed = AdminContext.of(connection).refusals.due((who, address, why))
    if swallowed is None:
        return
    since = f" ({swallowed} more refused since the last line)" if swallowed else ""
    method = connection.scope.get("method", "WEBSOCKET")
    path = connection.url.path[:_MAX_PATH_CHARS]
    log.warning("admin: refused %s %r from %r at %s: %s%s", method, path, who, address, why, since)


def log_cross_site(connection: HTTPConnection, who: str | None) -> None:
    """Another site's page sent a change or opened a WebSocket with this site's cookie (`who`: its session's user)."""
    origin = connection.headers.get("origin", "")[:100]
    log_refused(connection, who or "anonymous", f"cross-site request from {origin!r}")
