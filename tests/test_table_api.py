"""The table's game-master API as the admin app mounts it (`player_voice_routers` on the process's services): moves
reach the hub as `Positions`, invites open voice pages, and what is not a table or not signed in is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import SecretStr

from host.admin.voice import player_voice_routers
from host.bus.streams import StreamKind, stream_name
from host.config import Settings, VoicePageSettings
from host.events import Positions
from host.invites import InviteRedeemer, InviteSigner
from host.roles.services import HostServices
from tests.bus_support import Collector, consuming, wait_until

SECRET = SecretStr("table-api-secret")


def _operator(request: Request) -> None:
    if request.headers.get("X-Test-Operator") != "yes":
        raise HTTPException(status_code=403, detail="operators only")


def _profiles(root: Path) -> None:
    tavern = root / "tavern"
    tavern.mkdir(parents=True)
    (tavern / "server.toml").write_text(
        'name = "tavern"\ngame = "table"\n\n[voice_page]\npublic_url = "https://npc.example.org/voice/"\n'
    )
    (tavern / "bram.toml").write_text(
        'id = "bram"\nname = "Bram"\n\n[persona]\ndescription = "An innkeeper."\n\n'
        "[world]\nposition = { x = 0.0, y = 0.0, z = 0.0 }\nhearing_range = 8.0\nspeaking_range = 16.0\n"
    )
    village = root / "village"
    village.mkdir()
    (village / "server.toml").write_text('name = "village"\n')


@pytest_asyncio.fixture(loop_scope="function")
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, HostServices]]:
    _profiles(tmp_path / "profiles")
    settings = Settings(
        profiles_dir=tmp_path / "profiles",
        data_dir=tmp_path / "data",
        transcripts_dir=tmp_path / "transcripts",
        redis_url=None,
        voice_page=VoicePageSettings(invite_secret=SECRET),
    )
    services = await HostServices.open(settings, watch_profiles=False)
    app = FastAPI()
    for router in player_voice_routers(lambda: services, [Depends(_operator)]):
        app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            yield client, services
    finally:
        await services.aclose()


async def test_the_game_master_moves_tokens_and_invites_players(
    api: tuple[httpx.AsyncClient, HostServices],
) -> None:
    client, services = api
    operator = {"X-Test-Operator": "yes"}
    moves = {"tokens": [{"name": "Carol", "kind": "player", "x": 3, "z": -2, "yaw": 90}]}
    seen = Collector()
    async with consuming(services.bus, stream_name("tavern", StreamKind.POSITIONS), "test", "t", seen):
        moved = await client.put("/api/table/tavern/tokens", json=moves, headers=operator)
        assert moved.status_code == 200, moved.text
        await wait_until(lambda: len(seen.events) == 1, "the move on the hub")
    [event] = seen.events
    assert isinstance(event, Positions)
    [carol] = event.entities
    assert (carol.name, carol.kind, carol.x, carol.y, carol.z, carol.yaw) == ("Carol", "player", 3, 0, -2, 90)
    board = moved.json()
    assert {(t["name"], t["x"], t["z"]) for t in board["tokens"]} == {("bram", 0, 0), ("Carol", 3, -2)}
    assert board["npcs"] == [{"id": "bram", "name": "Bram", "hearing_range": 8.0, "speaking_range": 16.0}]

    invited = await client.post("/api/table/tavern/invites", json={"player": "Carol"}, headers=operator)
    assert invited.status_code == 200, invited.text
    url = invited.json()["url"]
    assert url.startswith("https://npc.example.org/voice/#invite=")
    invite = InviteRedeemer(InviteSigner(SECRET)).redeem(url.split("#invite=")[1])
    assert (invite.server, invite.player) == ("tavern", "Carol")

    page = await client.get("/table/tavern", headers=operator)
    assert page.status_code == 200 and "table.js" in page.text
    voice = await client.get("/voice/")  # the players' page needs no sign-in: the invite is its key
    assert voice.status_code == 200 and "voice.js" in voice.text
    assert "connect-src" in voice.headers["content-security-policy"]


async def test_what_is_not_a_table_or_not_an_operator_is_refused(
    api: tuple[httpx.AsyncClient, HostServices],
) -> None:
    client, _ = api
    operator = {"X-Test-Operator": "yes"}
    token = {"name": "Carol", "kind": "player", "x": 1, "z": 1}
    assert (await client.put("/api/table/tavern/tokens", json={"tokens": [token]})).status_code == 403
    assert (await client.get("/table/tavern")).status_code == 403
    village = await client.put("/api/table/village/tokens", json={"tokens": [token]}, headers=operator)
    assert village.status_code == 409 and "not a table" in village.text
    assert (
        await client.put("/api/table/nowhere/tokens", json={"tokens": [token]}, headers=operator)
    ).status_code == 404
    ghost = {"tokens": [{"name": "ghost", "kind": "npc", "x": 1, "z": 1}]}
    assert (await client.put("/api/table/tavern/tokens", json=ghost, headers=operator)).status_code == 422
    far = '{"tokens": [{"name": "Carol", "kind": "player", "x": 1e999, "z": 1}]}'  # JSON's way to write infinity
    headers = {**operator, "Content-Type": "application/json"}
    infinite = await client.put("/api/table/tavern/tokens", content=far, headers=headers)
    assert infinite.status_code == 422 and "x" in infinite.text
    no_page = await client.post("/api/table/village/invites", json={"player": "Carol"}, headers=operator)
    assert no_page.status_code == 409
    bad_name = await client.post("/api/table/tavern/invites", json={"player": "<script>"}, headers=operator)
    assert bad_name.status_code == 422
