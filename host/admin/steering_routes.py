"""Steering from the page: pause, resume, mute, stop; notes; corrections; saying a line as the NPC; annotations.

Each action goes on the hub as the same event an in-game `!npc` command or a hand-written note makes, with the
signed-in user as author, so one path performs it and the transcript records who did what and when.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from host.admin.auth import Operator, Viewer
from host.admin.context import AdminContext
from host.admin.live_routes import known_server
from host.admin.sessions import Session
from host.bus import stream_for
from host.events import AdminCorrection, AdminNote, Event, NpcControl
from host.store import ConflictError, NotFoundError, Recommendation
from host.transcript.lines import SpokenLine
from host.transcript.writer import now_utc

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["steering"])

MAX_TEXT = 2000
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControlBody(_Body):
    action: Literal["pause", "resume", "mute", "unmute", "stop"]


class TextBody(_Body):
    text: Text


class CorrectionBody(_Body):
    text: Text
    turn_id: str | None = Field(None, max_length=100, description="the turn to correct; default: the NPC's last")


class AnnotationBody(_Body):
    ref: str = Field(min_length=1, max_length=120, description="the line's `ref` as the transcript view gives it")
    text: Text


class Decision(_Body):
    accept: bool


class Done(BaseModel):
    event_id: str | None = None
    events: int = 1


def _known_npc(context: AdminContext, server: str, npc: str) -> None:
    known_server(context, server)
    if npc not in context.services.registry.npcs(server):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"server {server!r} has no NPC {npc!r}")


async def _publish(context: AdminContext, event: Event, session: Session) -> Done:
    await context.services.bus.publish(stream_for(event), event)
    log.info("%s (%s): %s for %s", session.user, session.role, event.type, getattr(event, "npc", event.server))
    return Done(event_id=event.id)


@router.post("/npcs/{server}/{npc}/control", response_model=Done, summary="Pause, resume, mute, unmute or stop")
async def control(server: str, npc: str, body: ControlBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    _known_npc(context, server, npc)
    event = NpcControl(server=server, npc=npc, action=body.action, author=session.user)
    return await _publish(context, event, session)


@router.post("/npcs/{server}/{npc}/say", response_model=Done, summary="Say a line as the NPC (chat and voice)")
async def say(server: str, npc: str, body: TextBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    _known_npc(context, server, npc)
    event = NpcControl(server=server, npc=npc, action="say", text=body.text, author=session.user)
    return await _publish(context, event, session)


@router.post("/npcs/{server}/{npc}/notes", response_model=Done, summary="A note the NPC takes into its next turns")
async def note(server: str, npc: str, body: TextBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    _known_npc(context, server, npc)
    return await _publish(context, AdminNote(server=server, npc=npc, author=session.user, text=body.text), session)


@router.post("/servers/{server}/notes", response_model=Done, summary="A note for every NPC of the server")
async def server_note(server: str, body: TextBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    known_server(context, server)
    npcs = sorted(context.services.registry.npcs(server))
    for npc in npcs:
        await _publish(context, AdminNote(server=server, npc=npc, author=session.user, text=body.text), session)
    return Done(events=len(npcs))


@router.post("/npcs/{server}/{npc}/corrections", response_model=Done, summary="Correct the NPC's last reply")
async def correct(server: str, npc: str, body: CorrectionBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    _known_npc(context, server, npc)
    event = AdminCorrection(server=server, npc=npc, author=session.user, text=body.text, turn_id=body.turn_id)
    return await _publish(context, event, session)


@router.post("/transcript/{server}/annotations", response_model=Done, summary="Annotate a transcript line")
async def annotate(server: str, body: AnnotationBody, request: Request, session: Operator) -> Done:
    context = AdminContext.of(request)
    known_server(context, server)
    line = SpokenLine(ts=now_utc(), source="admin", speaker=session.user, tags={"annotates": body.ref}, text=body.text)
    await context.services.transcripts.append(server, line)
    log.info("%s annotated %s line %s", session.user, server, body.ref)
    return Done(events=0)


@router.get(
    "/npcs/{server}/{npc}/recommendations",
    response_model=list[Recommendation],
    summary="The advisor's latest recommendations for the NPC",
)
async def recommendations(server: str, npc: str, request: Request, _: Viewer) -> list[Recommendation]:
    context = AdminContext.of(request)
    _known_npc(context, server, npc)
    return await context.services.store.steering.list_recommendations(server, npc=npc, limit=10)


@router.post(
    "/recommendations/{recommendation_id}/decision",
    response_model=Recommendation,
    summary="Accept (it applies from now) or reject a pending advisor recommendation",
)
async def decide(recommendation_id: int, body: Decision, request: Request, session: Operator) -> Recommendation:
    steering = AdminContext.of(request).services.store.steering
    try:
        decided = await steering.decide_recommendation(recommendation_id, accept=body.accept, by=session.user)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
    except ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
    log.info("%s %s recommendation %d", session.user, "accepted" if body.accept else "rejected", recommendation_id)
    return decided
