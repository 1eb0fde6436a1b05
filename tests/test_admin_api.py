"""The admin API over HTTP against a running `npc-host run --roles brain,admin`: sessions, CSRF, roles, health,
metrics, the live WebSocket, history paging, steering and profile edits."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
import websockets
import websockets.exceptions
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Mount, Route

from host.admin.app import create_app
from host.admin.context import AdminContext
from host.admin.feed import LiveFeed
from host.config import Settings
from host.store import NewRecommendation
from tests.admin_support import PASSWORDS, SERVER, AdminHost, admin_host, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["admin_host"]

PUBLIC = {("POST", "/api/session"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/")}
# The players' voice page: static files and where to connect; its one-time invite is the key, not a session.
PUBLIC |= {("GET", "/voice"), ("GET", "/voice/"), ("GET", "/voice/static/{name}"), ("GET", "/voice/config.json")}
SAMPLE_PARAMS = {"server": SERVER, "npc": "bram", "folder": SERVER, "name": "bram.toml", "recommendation_id": "1"}


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS[m.group(1)], path)


def _routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router as one entry
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _app_routes() -> tuple[list[tuple[str, str]], list[str]]:
    # Building the app reads only the settings and hands the registry to the table's router: requests do the rest.
    services = SimpleNamespace(settings=Settings(), registry=object(), bus=object())
    app = create_app(cast(AdminContext, SimpleNamespace(services=services)), cast(LiveFeed, object()))
    http, sockets = [], []
    for route in _routes(app.routes):
        if isinstance(route, APIRoute | Route):
            http += [(method, route.path) for method in sorted((route.methods or set()) - {"HEAD"})]
        elif isinstance(route, APIWebSocketRoute):
            sockets.append(route.path)
        else:
            assert isinstance(route, Mount) and route.path == "/static", route
    return http, sockets


async def test_every_route_but_sign_in_health_metrics_and_static_needs_a_session(admin_host: AdminHost) -> None:
    http, sockets = _app_routes()
    assert ("POST", "/api/npcs/{server}/{npc}/control") in http and ("PUT", "/api/profiles/{folder}/{name}") in http
    assert ("GET", "/api/table/{server}") in http
    assert sockets == ["/api/live"]
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as anonymous:
        for method, path in http:
            response = await anonymous.request(method, _fill(path), json={})
            if (method, path) in PUBLIC:
                assert response.status_code != 401, (method, path)
            else:
                assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert (await anonymous.get("/static/app.js")).status_code == 200
    ws_url = admin_host.url.replace("http", "ws") + "api/live"
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(ws_url) as socket:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_sign_in_sets_an_http_only_same_site_cookie_and_a_wrong_password_is_refused(
    admin_host: AdminHost,
) -> None:
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as client:
        wrong = await client.post("/api/session", json={"name": "ada", "password": "not it"})
        assert wrong.status_code == 401
        assert "not it" not in wrong.text
        right = await client.post("/api/session", json={"name": "ada", "password": PASSWORDS["ada"]})
        assert right.status_code == 200
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        me = await client.get("/api/me")
        assert me.json()["name"] == "ada" and me.json()["role"] == "admin"
        assert (
            await client.delete("/api/session", headers={"X-CSRF-Token": right.json()["csrf_token"]})
        ).status_code == 204
        assert (await client.get("/api/me")).status_code == 401


async def test_repeated_wrong_passwords_for_a_user_are_rate_limited(admin_host: AdminHost) -> None:
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as client:
        # "nobody" is no user: an unknown name is counted like a wrong password and reveals nothing.
        for _ in range(5):
            assert (await client.post("/api/session", json={"name": "nobody", "password": "guess"})).status_code == 401
        limited = await client.post("/api/session", json={"name": "nobody", "password": "guess"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        # Others from the same address still get in: five failures are far below the per-address limit.
        assert (
            await client.post("/api/session", json={"name": "otto", "password": PASSWORDS["otto"]})
        ).status_code == 200


async def test_refused_requests_are_logged_with_who_and_what_escaped(admin_host: AdminHost) -> None:
    """As a refused `!npc` is in game: the operators can see who tried what, and a crafted URL forges no log line."""
    async with signed_in(admin_host, "vic") as (viewer, csrf):
        crafted = f"/api/profiles/{SERVER}/bram%E2%80%A82026-12-01%20granted.toml"
        edit = await viewer.put(crafted, json={"values": {"name": "X"}}, headers={"X-CSRF-Token": csrf})
        assert edit.status_code == 403
        wrong_csrf = {"X-CSRF-Token": "guess"}
        steer = await viewer.post(f"/api/npcs/{SERVER}/bram/control", json={"action": "pause"}, headers=wrong_csrf)
        assert steer.status_code == 403
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as anonymous:
        foreign = await anonymous.post(
            "/api/session", json={"name": "vic", "password": "x" * 8}, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403

    def refused() -> list[str]:
        return [line for line in admin_host.process.output().splitlines() if "admin: refused" in line]

    await admin_host.wait_for(lambda: any("'anonymous'" in line for line in refused()), "the cross-site line")
    lines = refused()
    (role,) = [line for line in lines if "'vic'" in line and "needs the admin role" in line]
    assert "PUT" in role and "bram\\u20282026-12-01 granted.toml" in role  # the separator escaped, on one line
    (csrf_line,) = [line for line in lines if "'vic'" in line and "X-CSRF-Token" in line]
    assert "POST" in csrf_line and "/bram/control" in csrf_line and "guess" not in csrf_line
    (cross,) = [line for line in lines if "'anonymous'" in line]
    assert "POST '/api/session'" in cross and "cross-site request from 'http://evil.example'" in cross
    assert "\u2028" not in admin_host.process.output()  # (splitlines would split on it: look at the raw text)


async def test_changes_need_the_csrf_header_and_same_origin(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        path = f"/api/npcs/{SERVER}/hilde/control"
        assert (await client.post(path, json={"action": "mute"})).status_code == 403
        assert (
            await client.post(path, json={"action": "mute"}, headers={"X-CSRF-Token": "x" + csrf})
        ).status_code == 403
        cross = await client.post(
            path, json={"action": "mute"}, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        assert (await client.post(path, json={"action": "mute"}, headers={"X-CSRF-Token": csrf})).status_code == 200


async def test_a_viewer_reads_but_cannot_steer_and_an_operator_cannot_edit_profiles(admin_host: AdminHost) -> None:
    async with (
        signed_in(admin_host, "vic") as (viewer, viewer_csrf),
        signed_in(admin_host, "otto") as (operator, operator_csrf),
    ):
        assert (await viewer.get("/api/servers")).status_code == 200
        refused = await viewer.post(
            f"/api/npcs/{SERVER}/bram/control", json={"action": "pause"}, headers={"X-CSRF-Token": viewer_csrf}
        )
        assert refused.status_code == 403 and "operator" in refused.json()["detail"]
        edit = await operator.put(
            f"/api/profiles/{SERVER}/bram.toml", json={"values": {"name": "X"}}, headers={"X-CSRF-Token": operator_csrf}
        )
        assert edit.status_code == 403


async def test_healthz_reports_each_role_and_metrics_are_prometheus_text(admin_host: AdminHost) -> None:
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["roles"] == {"brain": "running", "admin": "running"}
        assert health.json()["checks"] == {"store": "ok", "hub": "ok"}
        metrics = await client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "npc_host_queue_depth" in metrics.text


async def test_the_openapi_description_is_served_to_signed_in_users(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "vic") as (client, _):
        spec = (await client.get("/api/openapi.json")).json()
    assert "/api/npcs/{server}/{npc}/notes" in spec["paths"]


async def test_live_lines_arrive_over_the_websocket_filtered_by_npc(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "vic") as (client, _):
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    host = admin_host.url.split("//")[1].rstrip("/")
    url = f"ws://{host}/api/live?server={SERVER}&npc=birch"
    async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": f"http://{host}"}) as socket:
        await asyncio.sleep(0.3)  # the handshake is done; the subscription is open
        await admin_host.say("bram", "Bram, anything new?")
        said = await admin_host.say("birch", "Birch, how old are you?")
        async with asyncio.timeout(30):
            lines = [json.loads(await socket.recv())["line"] for _ in range(2)]
    # Bram's exchange is filtered out; birch's is the conversation: Kai's line to birch, then birch's answer.
    asked, answered = lines
    assert (asked["source"], asked["speaker"], asked["addressee"]) == ("chat", "Kai", "birch")
    assert asked["text"] == said.text and asked["ref"] == f"event:{said.id}"
    assert answered["npc"] == "birch" and answered["source"] == "npc" and answered["player"] == "Kai"


async def test_a_cross_site_websocket_is_refused(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "vic") as (client, _):
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    url = admin_host.url.replace("http", "ws") + "api/live"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": "http://evil.example"}):
            pass
    assert refused.value.response.status_code == 403

    def logged() -> bool:
        output = admin_host.process.output()
        return "admin: refused WEBSOCKET '/api/live' from 'vic'" in output and "from 'http://evil.example'" in output

    await admin_host.wait_for(logged, "the refused WebSocket in the log")


def _line_number(line: dict[str, str]) -> int:
    return int(line["ref"].rsplit(":", 1)[1])  # one day's file here: the line number orders them


async def test_history_pages_back_through_the_transcript(admin_host: AdminHost) -> None:
    for n in range(3):
        await admin_host.say("bram", f"History question {n}?")
    await admin_host.wait_for(lambda: "History question 2?" in admin_host.transcript_text(), "the lines on file")
    await admin_host.wait_for(lambda: admin_host.transcript_text().count("stew is hot") >= 3, "three answers")
    async with signed_in(admin_host, "vic") as (client, _):
        first = (await client.get(f"/api/transcript/{SERVER}", params={"limit": 2, "player": "Alex"})).json()
        older = (
            await client.get(
                f"/api/transcript/{SERVER}", params={"limit": 2, "player": "Alex", "before": first["before"]}
            )
        ).json()
    assert len(first["lines"]) == 2 and len(older["lines"]) == 2
    assert all(line["player"] == "Alex" for line in first["lines"] + older["lines"])
    # Oldest first within a page, and the older page holds what came before.
    assert _line_number(older["lines"][-1]) < _line_number(first["lines"][0])
    assert {line["ref"] for line in first["lines"]}.isdisjoint(line["ref"] for line in older["lines"])


async def test_the_history_filtered_by_npc_holds_the_lines_to_it_and_its_own(admin_host: AdminHost) -> None:
    await admin_host.say("birch", "Birch, which way to the mill?")
    await admin_host.say("bram", "Bram, which way to the mill?")
    await admin_host.wait_for(lambda: "Bram, which way to the mill?" in admin_host.transcript_text(), "both on file")
    async with signed_in(admin_host, "vic") as (client, _):
        page = (await client.get(f"/api/transcript/{SERVER}", params={"npc": "birch", "limit": 200})).json()
    texts = [(line["speaker"], line["text"]) for line in page["lines"]]
    assert ("Kai", "Birch, which way to the mill?") in texts
    assert ("Alex", "Bram, which way to the mill?") not in texts
    assert {line["npc"] for line in page["lines"]} == {"birch"}
    assert {line["source"] for line in page["lines"]} >= {"chat", "npc"}


async def test_a_note_reaches_the_next_prompt_and_steering_is_on_the_record(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        headers = {"X-CSRF-Token": csrf}
        note = await client.post(
            f"/api/npcs/{SERVER}/birch/notes", json={"text": "The bridge to the east is out."}, headers=headers
        )
        assert note.status_code == 200
        store = await admin_host.open_store()
        try:

            async def stored() -> bool:
                return any("bridge to the east" in n.text for n in await store.steering.list_notes(SERVER, "birch"))

            await admin_host.wait_for(stored, "the note in birch's memory")
        finally:
            await store.close()
        asked = len(admin_host.llm.chat_bodies)
        await admin_host.say("birch", "Can I go east?")
        await admin_host.wait_for(lambda: len(admin_host.llm.chat_bodies) > asked, "birch's next prompt")
        prompt = json.dumps(admin_host.llm.chat_bodies[asked])
        assert "The bridge to the east is out." in prompt
        await admin_host.wait_for(lambda: "Can I go east?" in admin_host.transcript_text(), "the exchange on file")
        fixed = await client.post(
            f"/api/npcs/{SERVER}/birch/corrections", json={"text": "No, the bridge is out."}, headers=headers
        )
        assert fixed.status_code == 200
        annotated = await client.post(
            f"/api/transcript/{SERVER}/annotations", json={"ref": "2026-01-01:1", "text": "check this"}, headers=headers
        )
        assert annotated.status_code == 200
    await admin_host.wait_for(
        lambda: "No, the bridge is out." in admin_host.transcript_text(), "the correction on file"
    )
    text = admin_host.transcript_text()
    assert re.search(r"NOTE @birch \[by=otto\]: The bridge to the east is out\.", text)
    assert re.search(r'admin otto > birch \[.*correction.*\]: "No, the bridge is out\."', text)
    assert re.search(r'admin otto \[annotates=2026-01-01:1\]: "check this"', text)


async def test_a_profile_edit_with_a_mistake_is_refused_by_field_and_a_good_one_is_hot_reloaded(
    admin_host: AdminHost,
) -> None:
    path = f"/api/profiles/{SERVER}/hilde.toml"
    file = admin_host.workdir / "profiles" / SERVER / "hilde.toml"
    before = file.read_text()
    async with signed_in(admin_host, "ada") as (client, csrf):
        headers = {"X-CSRF-Token": csrf}
        bad = await client.put(path, json={"values": {"world.hearing_range": "-3"}}, headers=headers)
        assert bad.status_code == 422
        problems = bad.json()["detail"]["problems"]
        assert [p["field"] for p in problems] == ["world.hearing_range"]
        assert file.read_text() == before
        good = await client.put(path, json={"values": {"name": "Hilde the Bold"}}, headers=headers)
        assert good.status_code == 200, good.text
        assert 'name = "Hilde the Bold"' in file.read_text()
        assert file.read_text().count("#") == before.count("#")  # the author's comments stay
        servers = (await client.get("/api/servers")).json()
    hilde = next(npc for npc in servers[0]["npcs"] if npc["id"] == "hilde")
    assert hilde["name"] == "Hilde the Bold"


async def test_pause_shows_in_the_state_and_the_npc_stops_answering(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        paused = await client.post(
            f"/api/npcs/{SERVER}/bram/control", json={"action": "pause"}, headers={"X-CSRF-Token": csrf}
        )
        assert paused.status_code == 200

        async def shows_paused() -> bool:
            servers = (await client.get("/api/servers")).json()
            return any(npc["id"] == "bram" and npc["paused"] for npc in servers[0]["npcs"])

        await admin_host.wait_for(shows_paused, "bram paused in the live view")
        await admin_host.say("bram", "Bram? Are you there?")
        await admin_host.say("birch", "Birch, after Bram: are you there?")
        await admin_host.wait_for(lambda: "after Bram" in admin_host.transcript_text(), "birch hearing the line")
        await admin_host.wait_for(
            lambda: re.search(r'npc birch > Kai .*"Aye.*\n$', admin_host.transcript_text()) is not None,
            "birch's answer",
        )
        text = admin_host.transcript_text()
        after_pause = text[text.rindex("[control=pause]") :]
        # The line for bram came first and was handled before birch's (one said stream, in order): no answer.
        assert "npc birch > Kai" in after_pause
        assert "npc bram" not in after_pause
        await client.post(f"/api/npcs/{SERVER}/bram/control", json={"action": "resume"}, headers={"X-CSRF-Token": csrf})


async def test_an_operator_accepts_a_pending_recommendation_once_and_a_viewer_cannot(admin_host: AdminHost) -> None:
    store = await admin_host.open_store()
    try:
        pending = await store.steering.add_recommendation(
            NewRecommendation(server=SERVER, npc="hilde", steering=["Mention the east field tracks."], status="pending")
        )
    finally:
        await store.close()
    path = f"/api/recommendations/{pending.id}/decision"
    async with signed_in(admin_host, "vic") as (viewer, viewer_csrf):
        assert (
            await viewer.post(path, json={"accept": True}, headers={"X-CSRF-Token": viewer_csrf})
        ).status_code == 403
    async with signed_in(admin_host, "otto") as (client, csrf):
        listed = (await client.get(f"/api/npcs/{SERVER}/hilde/recommendations")).json()
        assert [(r["id"], r["status"]) for r in listed] == [(pending.id, "pending")]
        accepted = await client.post(path, json={"accept": True}, headers={"X-CSRF-Token": csrf})
        assert accepted.status_code == 200
        assert accepted.json()["status"] == "active" and accepted.json()["decided_by"] == "otto"
        again = await client.post(path, json={"accept": False}, headers={"X-CSRF-Token": csrf})
        assert again.status_code == 409


async def test_say_as_the_npc_is_performed_as_its_own_line(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        said = await client.post(
            f"/api/npcs/{SERVER}/hilde/say", json={"text": "The gate closes at dusk."}, headers={"X-CSRF-Token": csrf}
        )
        assert said.status_code == 200

        async def in_the_live_view() -> bool:
            servers = (await client.get("/api/servers")).json()
            hilde = next(npc for npc in servers[0]["npcs"] if npc["id"] == "hilde")
            return hilde["last_reply"] == "The gate closes at dusk."

        await admin_host.wait_for(in_the_live_view, "hilde's last line in the live view")
    assert re.search(r'npc hilde > otto \[turn=\w+\]: "The gate closes at dusk\."', admin_host.transcript_text())


async def test_an_admin_adds_a_user_who_then_signs_in_and_an_operator_cannot(admin_host: AdminHost) -> None:
    new_user = {"name": "newbie", "password": "newbie-password", "role": "viewer"}
    async with signed_in(admin_host, "otto") as (operator, csrf):
        assert (await operator.post("/api/users", json=new_user, headers={"X-CSRF-Token": csrf})).status_code == 403
    async with signed_in(admin_host, "ada") as (client, csrf):
        made = await client.post("/api/users", json=new_user, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201 and "password" not in made.text
        assert (await client.post("/api/users", json=new_user, headers={"X-CSRF-Token": csrf})).status_code == 409
        assert "newbie" in [user["name"] for user in (await client.get("/api/users")).json()]
    async with httpx.AsyncClient(base_url=admin_host.url, timeout=30) as fresh:
        answer = await fresh.post("/api/session", json={"name": "newbie", "password": "newbie-password"})
        assert answer.status_code == 200 and answer.json()["role"] == "viewer"


async def test_oversized_bodies_are_refused_declared_or_streamed(admin_host: AdminHost) -> None:
    big = b"x" * (10 * 1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    async with signed_in(admin_host, "ada") as (client, csrf):
        headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
        declared = await client.post("/api/session", content=big, headers=headers)
        assert declared.status_code == 413
        streamed = await client.put(f"/api/profiles/{SERVER}/bram.toml", content=chunks(), headers=headers)
        assert streamed.status_code == 413


async def test_sigterm_stops_the_host_cleanly_with_a_live_page_open(admin_host: AdminHost) -> None:
    """Last in this module: it ends the module's host."""
    async with signed_in(admin_host, "vic") as (client, _):
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    url = admin_host.url.replace("http", "ws") + "api/live"
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as socket:
        await asyncio.sleep(0.3)
        admin_host.process.signal(signal.SIGTERM)
        assert await admin_host.process.wait_exit() == 0, admin_host.process.output()[-3000:]
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await socket.recv()
