"""The live view: servers and NPCs with their state, the transcript history, and the live transcript WebSocket."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect, status
from pydantic import BaseModel, Field

from host.admin.auth import Viewer, same_origin, websocket_session
from host.admin.context import AdminContext
from host.admin.feed import LiveFeed, TooManySubscribersError
from host.admin.history import Page, matches, page
from host.admin.lines import ViewLine
from host.admin.refusals import log_cross_site

router = APIRouter(prefix="/api", tags=["live"])


class NpcView(BaseModel):
    id: str
    name: str
    present: bool
    paused: bool
    muted: bool
    talking_to: str | None
    last_player: str | None
    last_reply: str | None
    last_turn_at: datetime | None
    last_latency_ms: float | None


class ServerView(BaseModel):
    name: str
    game: str
    npcs: list[NpcView]


class HistoryQuery(BaseModel):
    before: str | None = Field(None, max_length=40, description="cursor of the previous page (<YYYY-MM-DD>:<line>)")
    limit: int = Field(50, ge=1, le=200)
    npc: str | None = Field(None, max_length=64)
    player: str | None = Field(None, max_length=64)


class HistoryPage(BaseModel):
    lines: list[ViewLine]
    before: str | None


def feed_of(request: Request | WebSocket) -> LiveFeed:
    feed: LiveFeed = request.app.state.feed
    return feed


def known_server(context: AdminContext, server: str) -> str:
    if server not in context.services.registry.server_names():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no server named {server!r}")
    return server


@router.get("/servers", response_model=list[ServerView], summary="Servers and their NPCs, with live state")
async def servers(request: Request, _: Viewer) -> list[ServerView]:
    context, feed = AdminContext.of(request), feed_of(request)
    registry, steering = context.services.registry, context.services.store.steering
    views = []
    for server in registry.server_names():
        paused = await steering.paused_npcs(server)
        muted = await steering.muted_npcs(server)  # held in the database like pauses: a restart keeps them
        npcs = []
        for npc in sorted(registry.npcs(server).values(), key=lambda n: n.id):
            live = feed.npc(server, npc.id)
            npcs.append(
                NpcView(
                    id=npc.id,
                    name=npc.name,
                    present=True,
                    paused=npc.id in paused,
                    muted=npc.id in muted,
                    talking_to=live.talking_to,
                    last_player=live.last_player,
                    last_reply=live.last_reply,
                    last_turn_at=datetime.fromtimestamp(live.last_turn_ts, UTC) if live.last_turn_ts else None,
                    last_latency_ms=live.last_latency_ms,
                )
            )
        views.append(ServerView(name=server, game=registry.server(server).game, npcs=npcs))
    return views


@router.get("/transcript/{server}", response_model=HistoryPage, summary="Transcript history, newest page first")
async def history(server: str, request: Request, query: Annotated[HistoryQuery, Query()], _: Viewer) -> HistoryPage:
    context = AdminContext.of(request)
    known_server(context, server)
    try:
        found: Page = await page(
            context.services.settings.transcripts_dir,
            server,
            before=query.before,
            limit=query.limit,
            npc=query.npc,
            player=query.player,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    return HistoryPage(lines=found.lines, before=found.before)


@router.websocket("/live")
async def live(
    websocket: WebSocket,
    server: Annotated[str | None, Query(max_length=64)] = None,
    npc: Annotated[str | None, Query(max_length=64)] = None,
    player: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """New transcript lines as JSON messages `{"server": ..., "line": {...}}`, filtered by server, NPC and player."""
    if not same_origin(websocket):
        session = await websocket_session(websocket)
        log_cross_site(websocket, session.user if session else None)
        await websocket.close()  # before the handshake: the other site's page gets a plain 403
        return
    if await websocket_session(websocket) is None:
        await websocket.accept()  # then closed with a code this site's page can read and act on
        await websocket.close(code=4401, reason="sign in first")
        return
    feed = feed_of(websocket)
    try:
        subscriber = feed.subscribe()
    except TooManySubscribersError as exc:
        await websocket.close(code=1013, reason=str(exc))
        return
    await websocket.accept()
    try:
        while (item := await subscriber.queue.get()) is not None:
            if server and item.server != server:
                continue
            if matches(item.line, npc, player):
                await websocket.send_json({"server": item.server, "line": item.line.model_dump(mode="json")})
        await websocket.close(code=1013, reason="fell behind; reload the history")
    except WebSocketDisconnect:
        pass
    finally:
        feed.unsubscribe(subscriber)
        with contextlib.suppress(RuntimeError):
            await websocket.close()
