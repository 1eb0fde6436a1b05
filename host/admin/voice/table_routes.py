"""`/table/{server}` (page) and `/api/table/{server}`: the game master's map of a `table` server (no game server):
where players' and NPCs' tokens stand on a 2D map, and one-time voice-page invites for the players.

A move is published as a `Positions` event, exactly what a game integration publishes, so hearing ranges, who answers
and each player's mix follow the board as they follow a game. The map is the x-z plane seen from above (y = 0): +x
east, +z south, `yaw` 0 facing south as in Minecraft; NPC profiles of a table put their `[world] position` at y = 0.
The admin app mounts this router behind its operator sign-in (`dependencies`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Request, params
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from host.errors import NpcHostError
from host.events import EntityPosition, Event, Positions
from host.invites import InviteSigner, invite_link
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import PlayerName, ServerProfile

STATIC = resources.files("host.admin.voice") / "static"

Publish = Callable[[Event], Awaitable[None]]
MAX_TOKENS = 512  # players and NPCs on one board
M = TypeVar("M", bound=BaseModel)
COORDINATE = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]


class Token(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="a player's name, or an NPC's id")
    kind: Literal["player", "npc"]
    x: COORDINATE
    z: COORDINATE
    yaw: float = Field(0.0, ge=-360.0, le=360.0, allow_inf_nan=False)


class Moves(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[Token] = Field(min_length=1, max_length=MAX_TOKENS)


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    player: PlayerName


class Invitation(BaseModel):
    url: str
    minutes: float


MAX_BODY_BYTES = 256 * 1024


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}


async def _read(request: Request, model: type[M]) -> M:
    """The body as `model`; a 422 names the field, without echoing the input (FastAPI's own error would, and cannot
    even write an infinite number back as JSON)."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"a request body holds at most {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise HTTPException(status_code=422, detail=f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class TableServices:
    """What the table's routes work with: the profiles, the hub, and the invite signer."""

    registry: ProfileRegistry
    publish: Publish
    signer: InviteSigner


def table_router(services: Callable[[], TableServices], dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """`services` is read per request (the admin app builds its routes before its services exist)."""
    router = APIRouter(dependencies=list(dependencies), tags=["table"])
    boards: dict[str, dict[str, Token]] = {}  # server -> name -> where the game master last put it

    def table(server: str) -> ServerProfile:
        try:
            profile = services().registry.server(server)
        except NpcHostError:
            raise HTTPException(status_code=404, detail=f"no server {server[:64]!r}") from None
        if profile.game != "table":
            raise HTTPException(status_code=409, detail=f"server {server!r} is a {profile.game} server, not a table")
        return profile

    @router.get("/table/{server}", include_in_schema=False)
    async def map_page(server: str) -> FileResponse:
        """The game master's map (static; it loads the board from the API below)."""
        table(server)
        return FileResponse(str(STATIC / "table.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/api/table/{server}")
    async def board(server: str) -> dict[str, Any]:
        """The NPCs with their ranges, and every token where it stands now (NPCs where their profile puts them until
        the game master moves them)."""
        table(server)
        npcs = services().registry.npcs(server)
        placed = boards.get(server, {})
        tokens = [
            placed.get(npc.id) or Token(name=npc.id, kind="npc", x=npc.world.position.x, z=npc.world.position.z)
            for npc in npcs.values()
        ] + [token for token in placed.values() if token.kind == "player"]
        return {
            "npcs": [
                {
                    "id": npc.id,
                    "name": npc.name,
                    "hearing_range": npc.world.hearing_range,
                    "speaking_range": npc.world.speaking_range,
                }
                for npc in npcs.values()
            ],
            "tokens": [token.model_dump() for token in tokens],
        }

    @router.put("/api/table/{server}/tokens", openapi_extra={"requestBody": _body_schema(Moves)})
    async def move(server: str, request: Request) -> dict[str, Any]:
        moves = await _read(request, Moves)
        table(server)
        npcs = services().registry.npcs(server)
        unknown = [t.name for t in moves.tokens if t.kind == "npc" and t.name not in npcs]
        if unknown:
            raise HTTPException(status_code=422, detail=f"no NPC {', '.join(unknown[:10])} on {server!r}")
        placed = boards.setdefault(server, {})
        if len(placed.keys() | {t.name for t in moves.tokens}) > MAX_TOKENS:
            raise HTTPException(status_code=422, detail=f"a board holds at most {MAX_TOKENS} tokens")
        for token in moves.tokens:
            placed[token.name] = token
        entities = [EntityPosition(name=t.name, kind=t.kind, x=t.x, y=0.0, z=t.z, yaw=t.yaw) for t in moves.tokens]
        await services().publish(Positions(server=server, entities=entities))
        return await board(server)

    @router.post("/api/table/{server}/invites", openapi_extra={"requestBody": _body_schema(InviteRequest)})
    async def invite(server: str, request: Request) -> Invitation:
        """A one-time voice-page link for a player of this server, to hand over however the table talks."""
        wanted = await _read(request, InviteRequest)
        try:
            profile = services().registry.server(server)
        except NpcHostError:
            raise HTTPException(status_code=404, detail=f"no server {server[:64]!r}") from None
        page = profile.voice_page
        if page is None or not page.enabled:
            raise HTTPException(status_code=409, detail=f"server {server!r} has no enabled [voice_page]")
        token = services().signer.mint(server, wanted.player, page.invite_minutes)
        return Invitation(url=invite_link(page.public_url, token), minutes=page.invite_minutes)

    return router
