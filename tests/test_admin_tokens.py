"""Per-server bridge tokens set on the admin page: only admins set, rotate and revoke them; the token is answered once
and found nowhere after (API, page, logs, database file); and a gateway in another process, on the same database,
takes a plugin with it over a real WebSocket (the server has no token in its environment), refuses a wrong one, and
follows a rotation and a revocation without a restart."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from websockets.exceptions import InvalidHandshake

from proximity_audio.bridge_client import BridgeClient, BridgeRefusedError
from proximity_audio.limits import BridgeLimits
from tests.admin_support import SERVER, WAIT_S, AdminHost, admin_host, signed_in
from tests.test_bridge_role import running_bridge

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["admin_host"]

PATH = f"/api/servers/{SERVER}/bridge-token"


async def _connects(url: str, token: str) -> bool:
    """Whether the bridge takes a plugin saying `token` for the server (False: refused as a bad token, 4001)."""
    async with BridgeClient(url, server=SERVER, token=token) as plugin:
        try:
            await plugin.connect()
        except BridgeRefusedError as refused:
            assert refused.code == 4001, refused
            return False
    return True


async def _connects_once_open(url: str, token: str) -> bool:
    """`_connects`, once the bridge listens: with no token anywhere it keeps its port closed until a first one is set
    (it looks every few seconds)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return await _connects(url, token)
        except OSError:
            assert time.monotonic() < deadline, "the bridge never opened for the token set on the page"
            await asyncio.sleep(0.2)


async def _refused_soon(url: str, token: str) -> None:
    """Until a hello with `token` is refused. A rotation reaches the bridge within its cache's second; the hellos it
    still takes meanwhile are not failures, so they never count against the door's limit on wrong tokens."""
    deadline = time.monotonic() + WAIT_S
    while await _connects(url, token):
        assert time.monotonic() < deadline, "the bridge kept taking a token that was replaced"


async def test_viewers_and_operators_cannot_see_set_or_revoke_a_token(admin_host: AdminHost) -> None:
    for name in ("vic", "otto"):
        async with signed_in(admin_host, name) as (client, csrf):
            headers = {"X-CSRF-Token": csrf}
            assert (await client.get(PATH)).status_code == 403
            assert (await client.post(PATH, headers=headers)).status_code == 403
            assert (await client.delete(PATH, headers=headers)).status_code == 403
    async with signed_in(admin_host, "ada") as (client, csrf):
        assert (await client.get(PATH)).json()["set_by"] is None  # none of those made one
        unknown = await client.post("/api/servers/nowhere/bridge-token", headers={"X-CSRF-Token": csrf})
        assert unknown.status_code == 404


async def test_a_token_set_on_the_page_lets_a_plugin_in_and_is_never_shown_again(
    admin_host: AdminHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with signed_in(admin_host, "ada") as (client, csrf):
        headers = {"X-CSRF-Token": csrf}
        # The gateway runs elsewhere (here: this test's process) on the same database, with no token in its
        # environment: only the one set on the page opens the server, and the first one needs no restart.
        async with running_bridge(admin_host.workdir, environ={}) as (_, url):
            with pytest.raises(OSError):
                await _connects(url, "no token is set anywhere yet")  # nothing to open: the port is closed
            assert (await client.post(PATH)).status_code == 403  # without the CSRF header
            made = await client.post(PATH, headers=headers)
            assert made.status_code == 201, made.text
            first = made.json()["token"]
            assert made.json()["set_by"] == "ada" and made.json()["token_env"] == "NPC_HOST_BRIDGE_TOKEN_EXAMPLE"
            assert await _connects_once_open(url, first)
            assert not await _connects(url, first[:-1] + ("A" if first[-1] != "A" else "B"))

            rotated = await client.post(PATH, headers=headers)
            assert rotated.status_code == 201, rotated.text
            second = rotated.json()["token"]
            assert second != first
            await _refused_soon(url, first)
            assert await _connects(url, second)

            revoked = await client.delete(PATH, headers=headers)
            assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "ada", revoked.text
            await _refused_soon(url, second)
            assert (await client.delete(PATH, headers=headers)).status_code == 404  # nothing left to revoke

            # Guessing a token set on the page is stopped like guessing the environment's: after the door's
            # failed-hello limit per address, that address is cut off before the handshake, right token or not.
            third = (await client.post(PATH, headers=headers)).json()["token"]
            with pytest.raises(InvalidHandshake):
                for guess in range(BridgeLimits().failed_hellos_per_address + 1):
                    assert not await _connects(url, f"a-guessed-token-number-{guess:04d}")
            with pytest.raises(InvalidHandshake):
                await _connects(url, third)

        seen = [
            (await client.get(PATH)).text,
            (await client.get("/api/servers")).text,
            (await client.get("/api/openapi.json")).text,
            (await client.get("/")).text,
        ]
    anywhere = [*seen, admin_host.process.output(), caplog.text]
    anywhere += [path.read_bytes().decode("latin-1") for path in (admin_host.workdir / "data").glob("npc-host.db*")]
    for token in (first, second, third):
        assert not [i for i, text in enumerate(anywhere) if token in text]
