"""What outlasts the admin host: a signed-in session (its cookie works after a restart, and in a second admin process
on the same database, until signed out in either) and an operator's mute."""

from __future__ import annotations

import httpx
import pytest

from tests.admin_support import SERVER, AdminHost, admin_host, signed_in, start_host

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["admin_host"]


def _client(url: str, cookie: str, csrf: str) -> httpx.AsyncClient:
    """A client sending the cookie a browser kept (by hand: the new process may listen on another port)."""
    return httpx.AsyncClient(
        base_url=url, timeout=30.0, headers={"Cookie": f"npc_host_session={cookie}", "X-CSRF-Token": csrf}
    )


async def _muted(client: httpx.AsyncClient) -> set[str]:
    servers = (await client.get("/api/servers")).json()
    return {npc["id"] for server in servers if server["name"] == SERVER for npc in server["npcs"] if npc["muted"]}


async def test_a_session_and_a_mute_outlast_a_restart_and_hold_in_a_second_admin_process(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        cookie = client.cookies["npc_host_session"]
        muting = await client.post(
            f"/api/npcs/{SERVER}/bram/control", json={"action": "mute"}, headers={"X-CSRF-Token": csrf}
        )
        assert muting.status_code == 200, muting.text

        async def bram_muted() -> bool:
            return await _muted(client) == {"bram"}

        await admin_host.wait_for(bram_muted, "bram shown muted")

    await admin_host.restart()
    async with _client(admin_host.url, cookie, csrf) as browser:
        me = await browser.get("/api/me")
        assert me.status_code == 200, me.text
        assert (me.json()["name"], me.json()["csrf_token"]) == ("otto", csrf)
        assert await _muted(browser) == {"bram"}

        second, url = await start_host(["run", "--roles", "admin"], admin_host.env, admin_host.workdir, "second-admin")
        try:
            async with _client(url, cookie, csrf) as elsewhere:
                assert (await elsewhere.get("/api/me")).status_code == 200
                signed_out = await elsewhere.delete("/api/session")
                assert signed_out.status_code == 204, signed_out.text
        finally:
            second.stop_now()
        # Signed out in the other process: this one refuses the cookie too.
        assert (await browser.get("/api/me")).status_code == 401
    assert cookie not in admin_host.process.output()
