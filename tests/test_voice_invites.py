"""One-time voice-page invites: what `!voice` (and a join, when offered) sends to the player, through the Minecraft
adapter against the RCON double; what an invite token accepts; the profile and settings that switch it on."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from host.config import MinecraftSettings, Settings, VoicePageSettings
from host.events import Event, PlayerSaid
from host.invites import InviteRedeemer, InviteRefusedError, InviteSigner, invite_link, page_origin
from host.profiles.schema import RconSpec, ServerProfile, VoicePageSpec
from integrations.minecraft.adapter import MinecraftAdapter
from integrations.minecraft.voice_invites import COOLDOWN_S, DISABLED, InviteCooldown, voice_invite
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer

SECRET = SecretStr("invite-test-secret")
PAGE = VoicePageSpec(public_url="https://npc.example.org/voice/", invite_minutes=3)
PASSWORD, VARIABLE = "invite-Secret-pw", "NPC_HOST_TEST_INVITE_RCON"


def _link(command: str) -> tuple[str, dict[str, object]]:
    """The player a `tellraw` goes to, and its clickable part."""
    match = re.fullmatch(r"tellraw (\w+) (\[.*\])", command)
    assert match is not None, command
    [link] = [part for part in json.loads(match[2]) if "clickEvent" in part or "click_event" in part]
    return match[1], link


def test_a_voice_link_goes_to_that_player_alone_and_names_them_once() -> None:
    signer = InviteSigner(SECRET)
    server = ServerProfile(name="village", voice_page=PAGE)
    before = time.time()
    [command] = voice_invite(server, "Alice", signer, snbt_text=False)
    after = time.time()
    player, link = _link(command)
    assert player == "Alice"
    click = link["clickEvent"]
    assert isinstance(click, dict) and click["action"] == "open_url"
    url = str(click["value"])
    assert url.startswith("https://npc.example.org/voice/#invite=")
    invite = InviteRedeemer(signer).redeem(url.split("#invite=", 1)[1])
    assert (invite.server, invite.player) == ("village", "Alice")
    # Three minutes from the moment it was made; the invite keeps milliseconds, so allow their rounding.
    assert before + 180 - 0.001 <= invite.expires <= after + 180 + 0.001
    assert "within 3 minutes" in command


def test_servers_on_1_21_5_get_the_renamed_click_event() -> None:
    [command] = voice_invite(ServerProfile(name="v", voice_page=PAGE), "Alice", InviteSigner(SECRET), snbt_text=True)
    _, link = _link(command)
    click = link["click_event"]
    assert isinstance(click, dict) and str(click["url"]).startswith("https://npc.example.org/voice/#invite=")
    assert "clickEvent" not in link and "hoverEvent" not in link


@pytest.mark.parametrize("page", [None, VoicePageSpec(public_url="https://x.org/voice/", enabled=False)])
def test_without_an_enabled_voice_page_the_player_is_told_so(page: VoicePageSpec | None) -> None:
    [command] = voice_invite(ServerProfile(name="v", voice_page=page), "Alice", InviteSigner(SECRET), snbt_text=False)
    assert command.startswith("tellraw Alice ") and DISABLED in command and "open_url" not in command


def test_an_invite_is_refused_when_forged_expired_or_used_twice() -> None:
    signer = InviteSigner(SECRET)
    redeemer = InviteRedeemer(signer)
    token = signer.mint("village", "Alice", 5)
    body, signature = token.split(".")
    forged_body = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    refusals = {
        "forged": f"{forged_body}.{signature}",
        "foreign": InviteSigner(SecretStr("another-host")).mint("village", "Alice", 5),
        "expired": InviteSigner(SECRET, clock=lambda: time.time() - 400).mint("village", "Alice", 5),
        "garbage": "a.b.c",
    }
    for bad in refusals.values():
        with pytest.raises(InviteRefusedError):
            redeemer.redeem(bad)
    assert redeemer.redeem(token).player == "Alice"
    with pytest.raises(InviteRefusedError, match="already used"):
        redeemer.redeem(token)


def test_a_player_gets_one_link_per_cooldown() -> None:
    now = [0.0]
    cooldown = InviteCooldown(clock=lambda: now[0])
    assert cooldown.allow("Alice") and cooldown.allow("Bob")
    now[0] = COOLDOWN_S - 1
    assert not cooldown.allow("Alice")
    now[0] = COOLDOWN_S
    assert cooldown.allow("Alice")


def test_links_and_origins() -> None:
    assert invite_link("https://npc.example.org/voice/", "t.s") == "https://npc.example.org/voice/#invite=t.s"
    assert page_origin("https://NPC.example.org:8443/voice/") == "https://npc.example.org:8443"


def test_profiles_and_settings() -> None:
    with pytest.raises(ValidationError, match="table"):
        ServerProfile(name="tavern", game="table", rcon=RconSpec(password_env="X"))
    with pytest.raises(ValidationError, match="public_url"):
        VoicePageSpec(public_url="javascript:alert(1)")
    masked = Settings(voice_page=VoicePageSettings(invite_secret=SecretStr("s3cret-value"))).masked()
    assert "s3cret-value" not in json.dumps(masked)


@pytest_asyncio.fixture(loop_scope="function")
async def village(tmp_path: Path) -> AsyncIterator[tuple[RconTestServer, Path, asyncio.Queue[Event]]]:
    world = MinecraftWorld(players={"Alice": Player(3, 64, 0), "Bob": Player(9, 64, 0)})
    log = tmp_path / "latest.log"
    log.write_text("[11:59:00] [Server thread/INFO]: Done\n")
    events: asyncio.Queue[Event] = asyncio.Queue()
    page = VoicePageSpec(public_url="https://npc.example.org/voice/", offer_on_join=True)
    async with RconTestServer(PASSWORD, world) as rcon:
        profile = ServerProfile(
            name="village",
            rcon=RconSpec(host="127.0.0.1", port=rcon.port, password_env=VARIABLE),
            log_path=str(log),
            voice_page=page,
        )
        settings = Settings(
            minecraft=MinecraftSettings(positions_interval_s=0.05, log_poll_interval_s=0.02),
            voice_page=VoicePageSettings(invite_secret=SECRET),
        )
        adapter = MinecraftAdapter(profile, [], settings, {VARIABLE: PASSWORD})
        await adapter.start(events.put)
        try:
            yield rcon, log, events
        finally:
            await adapter.stop()


async def test_voice_in_chat_and_joins_send_links_the_npcs_never_hear(
    village: tuple[RconTestServer, Path, asyncio.Queue[Event]],
) -> None:
    rcon, log, events = village
    with log.open("a") as fh:
        fh.write("[12:00:01] [Server thread/INFO]: <Alice> !voice\n")
        fh.write("[12:00:02] [Server thread/INFO]: Bob joined the game\n")
        fh.write("[12:00:03] [Server thread/INFO]: <Alice> !voice\n")  # again at once: no second link
        fh.write("[12:00:04] [Server thread/INFO]: <Alice> hello Bram\n")
    async with asyncio.timeout(10):
        links = await rcon.wait_for_commands(r"^tellraw \w+ .*open_url", 2)
        while not isinstance(said := await events.get(), PlayerSaid):
            pass
    assert [_link(command)[0] for command in links] == ["Alice", "Bob"]
    assert len([command for command in rcon.commands if re.match(r"tellraw \w+ ", command)]) == 2  # not 3
    assert said.text == "hello Bram"  # the first line the NPCs hear: `!voice` was not one
    redeemer = InviteRedeemer(InviteSigner(SECRET))
    tokens = [str(_link(command)[1]["clickEvent"]["value"]).split("#invite=")[1] for command in links]  # type: ignore[index]
    assert [redeemer.redeem(token).player for token in tokens] == ["Alice", "Bob"]
