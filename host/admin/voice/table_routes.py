"""`/api/table/{server}`: the game master's board for a `table` server (no game server): where players' and NPCs'
tokens stand on a 2D map, and one-time voice-page invites for the players.

A move is published as a `Positions` event, exactly what a game integration publishes, so hearing ranges, who answers
and each player's mix follow the board as they follow a game. The map is the x-z plane seen from above (y = 0): +x
east, +z south, `yaw` 0 facing south as in Minecraft; NPC profiles of a table put their `[world] position` at y = 0.
The admin app mounts this router behind its operator sign-in (`dependencies`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, params
from pydantic import BaseModel, ConfigDict, Field

from host.errors import NpcHostError
from host.events import EntityPosition, Event, Positions
from host.invites import InviteSigner, invite_link
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import PlayerName, ServerProfile

Publish = Callable[[Event], Awaitable[None]]
MAX_TOKENS = 512  # players and NPCs on one board
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


def table_router(
    registry: ProfileRegistry, publish: Publish, signer: InviteSigner, dependencies: Sequence[params.Depends] = ()
) -> APIRouter:
    router = APIRouter(prefix="/api/table", dependencies=list(dependencies), tags=["table"])
    boards: dict[str, dict[str, Token]] = {}  # server -> name -> where the game master last put it

    def table(server: str) -> ServerProfile:
        try:
            profile = registry.server(server)
        except NpcHostError:
            raise HTTPException(status_code=404, detail=f"no server {server[:64]!r}") from None
        if profile.game != "table":
            raise HTTPException(status_code=409, detail=f"server {server!r} is a {profile.game} server, not a table")
        return profile

    @router.get("/{server}")
    async def board(server: str) -> dict[str, Any]:
        """The NPCs with their ranges, and every token where it stands now (NPCs where their profile puts them until
        the game master moves them)."""
        table(server)
        npcs = registry.npcs(server)
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

    @router.put("/{server}/tokens")
    async def move(server: str, moves: Moves) -> dict[str, Any]:
        table(server)
        npcs = registry.npcs(server)
        unknown = [t.name for t in moves.tokens if t.kind == "npc" and t.name not in npcs]
        if unknown:
            raise HTTPException(status_code=422, detail=f"no NPC {', '.join(unknown[:10])} on {server!r}")
        placed = boards.setdefault(server, {})
        if len(placed.keys() | {t.name for t in moves.tokens}) > MAX_TOKENS:
            raise HTTPException(status_code=422, detail=f"a board holds at most {MAX_TOKENS} tokens")
        for token in moves.tokens:
            placed[token.name] = token
        entities = [EntityPosition(name=t.name, kind=t.kind, x=t.x, y=0.0, z=t.z, yaw=t.yaw) for t in moves.tokens]
        await publish(Positions(server=server, entities=entities))
        return await board(server)

    @router.post("/{server}/invites")
    async def invite(server: str, request: InviteRequest) -> Invitation:
        """A one-time voice-page link for a player of this server, to hand over however the table talks."""
        try:
            profile = registry.server(server)
        except NpcHostError:
            raise HTTPException(status_code=404, detail=f"no server {server[:64]!r}") from None
        page = profile.voice_page
        if page is None or not page.enabled:
            raise HTTPException(status_code=409, detail=f"server {server!r} has no enabled [voice_page]")
        token = signer.mint(server, request.player, page.invite_minutes)
        return Invitation(url=invite_link(page.public_url, token), minutes=page.invite_minutes)

    return router
