"""`/voice/`: the players' voice page, static files served from the package (no front-end build, nothing fetched from
elsewhere at run time). The page holds no secret: its one-time invite travels in the URL's fragment, which the
browser never sends here, and the page connects to the voice bridge's `/voice/ws` with it (docs/voice-page.md)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from host.config import Settings

STATIC = resources.files("host.admin.voice") / "static"
FILES = {
    "voice.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "playback-worklet.js": "text/javascript",
    "voice.css": "text/css",
    "table.js": "text/javascript",  # the game master's map (table_routes.py)
    "table.css": "text/css",
}


def page_headers(settings: Settings) -> dict[str, str]:
    """The page may connect only to its own origin and the configured voice WebSocket, and be framed by nobody."""
    ws = settings.voice_page.ws_url or "ws: wss:"
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' {ws}; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Permissions-Policy": "microphone=(self)",
    }


def voice_router(settings: Callable[[], Settings]) -> APIRouter:
    """`settings` is read per request (the admin app builds its routes before its services exist)."""
    router = APIRouter(prefix="/voice", include_in_schema=False)

    @router.get("")
    async def to_page() -> RedirectResponse:
        return RedirectResponse("/voice/")

    @router.get("/")
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers=page_headers(settings()))

    @router.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        if name not in FILES:
            raise HTTPException(status_code=404, detail="no such file")
        return FileResponse(str(STATIC / name), media_type=FILES[name], headers=page_headers(settings()))

    @router.get("/config.json")
    async def config() -> dict[str, Any]:
        """Where the page connects: the configured WebSocket, else the bridge's port on the page's host."""
        current = settings()
        return {"ws_url": current.voice_page.ws_url, "bridge_port": current.bridge_port}

    return router
