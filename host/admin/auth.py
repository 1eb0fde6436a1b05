"""Who may do what: the session cookie, the CSRF header, and the role each route needs.

viewer reads; operator also steers; admin also edits profiles and users. A route declares its need with
`session: Viewer`, `session: Operator` or `session: Admin`; every state-changing route also needs the CSRF header.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket, status
from starlette.requests import HTTPConnection

from host.admin.context import AdminContext
from host.admin.refusals import log_refused
from host.admin.sessions import Role, Session

COOKIE = "npc_host_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def session_of(request: Request) -> Session:
    session = await AdminContext.of(request).sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first")
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            log_refused(request, session.user, f"missing or wrong {CSRF_HEADER} header")
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")
    return session


def _needs(role: Role) -> Callable[[Request, Session], Session]:
    def check(request: Request, session: Annotated[Session, Depends(session_of)]) -> Session:
        if not session.allows(role):
            log_refused(request, session.user, f"needs the {role} role, has {session.role}")
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role} role; you are {session.role}")
        return session

    return check


viewer = _needs("viewer")
operator = _needs("operator")
admin = _needs("admin")
# Route parameters: `session: Operator` lets only operators and admins in.
SignedIn = Annotated[Session, Depends(session_of)]
Viewer = Annotated[Session, Depends(viewer)]
Operator = Annotated[Session, Depends(operator)]
Admin = Annotated[Session, Depends(admin)]


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a request comes from this site's own page (or from no page at all: a script sends no Origin).

    Browsers send cookies with cross-site WebSocket handshakes and form posts, so the Origin must be this host's.
    """
    origin = connection.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == connection.headers.get("host")


async def websocket_session(websocket: WebSocket) -> Session | None:
    return await AdminContext.of(websocket).sessions.get(websocket.cookies.get(COOKIE))
