"""`create_app`: the admin web app of one process.

With `page=False` (a process without the admin role) it serves only /healthz and /metrics. With the page: the
operator's page (static files, no front-end build), its API (described at /api/openapi.json for signed-in users)
and the players' voice page.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from host.admin import auth_routes, health_routes, live_routes, profile_routes, steering_routes, token_routes
from host.admin.auth import COOKIE, UNSAFE_METHODS, Viewer, operator, same_origin
from host.admin.context import AdminContext
from host.admin.feed import LiveFeed
from host.admin.refusals import log_cross_site
from host.admin.voice import player_voice_routers

STATIC = resources.files("host.admin") / "static"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


MAX_BODY_BYTES = 9 * 1024 * 1024  # a character card upload (8 MiB) and its form around it


class _BodyCap:
    """Refuse a request body larger than `MAX_BODY_BYTES` (413), declared or streamed, before a handler reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await JSONResponse({"detail": "request body too large"}, status_code=413)(scope, receive, send)
            return
        received, refused = 0, False

        async def capped() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                # Answered here; the handler reading the body sees the client gone and sends nothing more.
                refused = True
                await JSONResponse({"detail": "request body too large"}, status_code=413)(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, capped, unless_refused)


class _SameOriginWrites(BaseHTTPMiddleware):
    """Refuse a state-changing request another site's page sent (the sign-in included, which has no CSRF token yet),
    and give every response the headers that keep the page out of frames and off foreign scripts."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method in UNSAFE_METHODS and not same_origin(request):
            session = await AdminContext.of(request).sessions.get(request.cookies.get(COOKIE))
            log_cross_site(request, session.user if session else None)
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        response = await call_next(request)
        # A route may set a stricter policy of its own (the voice page connects to the voice bridge's WebSocket).
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def create_app(context: AdminContext, feed: LiveFeed | None = None, *, page: bool = True) -> FastAPI:
    app = FastAPI(
        title="npc-host admin",
        version="1",
        description="Watch, steer and configure the NPCs. Changes need the X-CSRF-Token header from GET /api/me.",
        openapi_url=None,  # served below behind a session, and without the CDN-hosted docs pages
        docs_url=None,
        redoc_url=None,
    )
    app.state.admin = context
    app.state.feed = feed
    app.add_middleware(_SameOriginWrites)
    app.add_middleware(_BodyCap)
    app.include_router(health_routes.router)
    if not page:
        return app
    if feed is None:
        raise ValueError("the operator's page needs the live feed")
    routers = (auth_routes, live_routes, steering_routes, profile_routes, token_routes)
    for router in (module.router for module in routers):
        app.include_router(router)
    # The players' voice page serves players, not operators: its invite is its key. The table map is the operators'.
    for router in player_voice_routers(lambda: context.services, [Depends(operator)]):
        app.include_router(router)

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_: Viewer) -> dict[str, Any]:
        return app.openapi()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
