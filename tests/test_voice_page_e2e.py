"""Players' voice in the browser, end to end: `npc-host run` (every role, Redis hub) with the example village against
the RCON and log doubles, plus a `table` server; the voice page served by a FastAPI app; real headless Chromium
(Debian's) whose fake microphone plays the packaged recording "Bram, do you have a room for the night?".

Village: Alice stands a block from Bram, Bob 400 blocks away; both type `!voice` and open their links. Table: the
game master places Carol next to the table's Bram, invites her, and moves her token away while Bram answers.
Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from host.admin.voice.routes import voice_router
from host.admin.voice.table_routes import TableServices, table_router
from host.bus import RedisBus, stream_for
from host.config import BusSettings, Settings, VoicePageSettings
from host.events import Event
from host.invites import InviteSigner, invite_link
from host.profiles.registry import ProfileRegistry
from proximity_audio.protocol import SAMPLE_RATE
from tests.bridge_support import recording_48k
from tests.bus_support import wait_until
from tests.chromium import chromium_path
from tests.doubles.ollama_server import OllamaWireServer
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer
from tests.host_process import START_S, HostProcess, closed_port, host_env

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD, PASSWORD_ENV = "voice-Village-Secret", "NPC_HOST_RCON_PASSWORD_EXAMPLE"
SECRET = "voice-page-test-invite-secret"
WAIT_S = 240.0  # a bound for a loaded 2-core machine (model loads, STT, TTS), never a speed check
# Two long sentences each (the profiles allow two), so Bram is still talking when the table's token moves away.
VILLAGE_REPLY = (
    "Aye, traveller, one warm room is left upstairs, with a soft bed and a window over the river and the mill. "
    "It costs three emeralds a night, and breakfast is mushroom stew with fresh bread from the oven."
)
TABLE_REPLY = (
    "Welcome to the table, friend, pull up a chair by the fire and warm your hands while the stew is bubbling. "
    "The room upstairs is yours for two silver coins, and mind the third step because it creaks like an old door."
)


def _reply_for(body: dict[str, Any]) -> str:
    """Bram answers Carol at the table, anyone else in the village: by the request, not the order of the calls
    (a speculative turn the host discards makes a call of its own)."""
    last = str(body["messages"][-1]["content"])
    return TABLE_REPLY if "Carol" in last else VILLAGE_REPLY


LINK = re.compile(r'"(?:value|url)":"(?P<url>https?://[^"]+)"')


@dataclass
class Scene:
    rcon: RconTestServer
    host: HostProcess
    server_log: Path
    transcripts: Path
    web: str
    browser: Browser
    bus: RedisBus

    def chat(self, player: str, text: str) -> None:
        with self.server_log.open("a", encoding="utf-8") as log:
            log.write(f"[12:00:01] [Server thread/INFO]: <{player}> {text}\n")

    async def link_for(self, player: str) -> str:
        async with asyncio.timeout(WAIT_S):
            [command] = await self.rcon.wait_for_commands(rf"^tellraw {player} .*open_url")
        match = LINK.search(command)
        assert match is not None, command
        return match["url"]

    async def open(self, url: str, *, push_to_talk: bool = False) -> Page:
        page = await self.browser.new_page()
        await page.goto(url)
        if push_to_talk:  # chosen before Start: this player never holds the button, so never transmits
            await page.check("input[name=mode][value=ptt]")
        await page.click("#start")
        return page


def fake_microphone(tmp_path: Path) -> Path:
    """The packaged question at 48 kHz 16-bit mono (what Chromium's fake capture reads), then 4 s of silence."""
    samples = np.concatenate((np.zeros(SAMPLE_RATE // 2, np.int16), recording_48k("bram_room.wav")))
    samples = np.concatenate((samples, np.zeros(4 * SAMPLE_RATE, np.int16)))
    path = tmp_path / "question.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return path


def profiles(tmp_path: Path, repo_root: Path, rcon_port: int, server_log: Path, web: str) -> Path:
    """The example village pointed at the doubles, and a table around the same Bram, both with voice pages."""
    root = tmp_path / "profiles"
    village = root / "example"
    shutil.copytree(repo_root / "npc_profiles" / "example", village)
    server_toml = village / "server.toml"
    text = server_toml.read_text("utf-8")
    text = re.sub(r"(?m)^port = .*$", f"port = {rcon_port}", text)
    text = re.sub(r'(?m)^log_path = ".*"$', f"log_path = {json.dumps(str(server_log))}", text)
    text = re.sub(r"(?ms)^\[bridge\]\n.*?\n\n", "", text)  # no companion plugin: voice pages only
    server_toml.write_text(text + f'\n[voice_page]\npublic_url = "{web}/voice/"\n', "utf-8")
    table = root / "tavern"
    table.mkdir()
    (table / "server.toml").write_text(
        f'name = "tavern"\ngame = "table"\n\n[voice_page]\npublic_url = "{web}/voice/"\n', "utf-8"
    )
    bram = (village / "bram.toml").read_text("utf-8")
    bram = re.sub(r"(?m)^position = .*$", "position = { x = 0.0, y = 0.0, z = 0.0 }", bram)
    (table / "bram.toml").write_text(bram, "utf-8")
    return root


async def serve_web(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, "the web app listening")
    return server, task


@pytest_asyncio.fixture(loop_scope="function")
async def scene(tmp_path: Path, repo_root: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[Scene]:
    world = MinecraftWorld(
        players={"Alice": Player(5.5, 64.0, -2.5), "Bob": Player(300.0, 64.0, 300.0)}  # Bram: (4.5, 64, -3.5)
    )
    server_log = tmp_path / "minecraft" / "latest.log"
    server_log.parent.mkdir()
    server_log.write_text('[11:59:00] [Server thread/INFO]: Done (3.2s)! For help, type "help"\n', "utf-8")
    web_port, bridge_port = closed_port(), closed_port()
    web = f"http://127.0.0.1:{web_port}"
    bus = RedisBus(redis_url, BusSettings(key_prefix=redis_prefix), client_name="test-voice-page")
    await bus.connect()
    async with (
        RconTestServer(PASSWORD, world) as rcon,
        OllamaWireServer(reply_for=_reply_for) as llm,
        async_playwright() as playwright,
    ):
        root = profiles(tmp_path, repo_root, rcon.port, server_log, web)
        settings = Settings(bridge_port=bridge_port, voice_page=VoicePageSettings(invite_secret=SecretStr(SECRET)))
        registry = ProfileRegistry(root)
        await registry.reload()

        async def publish(event: Event) -> None:
            await bus.publish(stream_for(event), event)

        app = FastAPI()
        table = TableServices(registry, publish, InviteSigner(SecretStr(SECRET)))
        app.include_router(voice_router(lambda: settings))
        app.include_router(table_router(lambda: table))
        web_server, web_task = await serve_web(app, web_port)
        env = host_env(
            tmp_path,
            NPC_HOST_PROFILES_DIR=str(root),
            NPC_HOST_REDIS_URL=redis_url,
            NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
            NPC_HOST_LLM__BACKEND="ollama",
            NPC_HOST_LLM__OLLAMA_URL=llm.url,
            NPC_HOST_LLM__RETRIES="0",
            NPC_HOST_BRIDGE_PORT=str(bridge_port),
            NPC_HOST_VOICE_PAGE__INVITE_SECRET=SECRET,
            NPC_HOST_MINECRAFT__POSITIONS_INTERVAL_S="0.1",
            NPC_HOST_MINECRAFT__LOG_POLL_INTERVAL_S="0.05",
            **{PASSWORD_ENV: PASSWORD},
        )
        host = HostProcess.start(["run"], env, tmp_path)
        microphone = fake_microphone(tmp_path)
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            await host.wait_output("voice bridge listening", START_S)
            await host.wait_output("gateway drives 'example'", START_S)
            yield Scene(rcon, host, server_log, tmp_path / "transcripts", web, browser, bus)
        finally:
            await browser.close()
            host.stop_now()
            web_server.should_exit = True
            await web_task
            await registry.stop()
            await bus.aclose()
    for secret in (SECRET, PASSWORD):
        assert secret not in host.output()


async def stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => ({...window.voiceStats})")
    return result


async def until(page: Page, host: HostProcess, what: str, script: str) -> None:
    """Wait until `script` (a JS expression on the page) is true."""
    deadline = time.monotonic() + WAIT_S
    while not await page.evaluate(script):
        if time.monotonic() > deadline:
            state = await page.text_content("#state")
            raise AssertionError(f"gave up waiting for {what} (page: {state})\n{host.output()[-6000:]}")
        await asyncio.sleep(0.1)


async def transcript_lines(page: Page) -> list[str]:
    return await page.locator("#transcript li").all_text_contents()


async def test_players_talk_to_npcs_from_the_browser(scene: Scene) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The players' positions are known to the host (two polls of all of them).
    await scene.rcon.wait_for_commands(r"^execute as @a run data get entity @s Pos$", 2)

    # `!voice` answers each player alone with a link; nobody else sees it and the NPCs never hear it.
    scene.chat("Bob", "!voice")
    bob_url = await scene.link_for("Bob")
    scene.chat("Alice", "!voice")
    alice_url = await scene.link_for("Alice")
    assert alice_url != bob_url and "#invite=" in alice_url

    bob = await scene.open(bob_url)
    await until(bob, scene.host, "Bob's page connected", "document.querySelector('#state').dataset.state === 'live'")
    alice = await scene.open(alice_url)
    await until(
        alice, scene.host, "Alice's page connected", "document.querySelector('#state').dataset.state === 'live'"
    )
    assert await alice.text_content("#who") == "You are Alice on example."
    assert "#invite" not in alice.url  # nothing secret left in the address bar
    await until(alice, scene.host, "Bram in earshot", "document.querySelector('#earshot').dataset.npcs === 'bram'")
    assert await alice.text_content("#earshot") == "In earshot: Bram"

    # Alice asks aloud; the host heard her, and her page shows it and plays Bram's answer.
    await until(
        alice,
        scene.host,
        "Alice's question on her page",
        "[...document.querySelectorAll('#transcript li')].some(li => li.dataset.speaker === 'Alice')",
    )
    [question] = [line for line in await transcript_lines(alice) if line.startswith("Alice: ")]
    assert "room" in question.lower()
    await until(alice, scene.host, "Bram's voice on Alice's page", "window.voiceStats.framesReceived >= 100")
    assert (await stats(alice))["peak"] > 1000  # not silence
    await until(
        alice,
        scene.host,
        "Bram's words on Alice's page",
        "[...document.querySelectorAll('#transcript li')].some(li => li.dataset.source === 'npc')",
    )
    assert any(line.startswith("Bram: Aye, traveller") for line in await transcript_lines(alice))
    await alice.screenshot(path=str(SCREENSHOTS / "voice-page.png"), full_page=True)

    # Bob, 400 blocks away, said the same into his microphone: nobody heard him, and he hears nothing.
    assert (await stats(bob))["framesSent"] > 100
    assert (await stats(bob))["framesReceived"] == 0
    assert await transcript_lines(bob) == []
    # Without a microphone Bob can type; the line is his, said where he stands (too far for any NPC to answer).
    await bob.fill("#chat-text", "Is anyone out here?")
    await bob.click("#chat button")
    await until(bob, scene.host, "Bob's typed line", "document.querySelectorAll('#transcript li').length === 1")
    assert await transcript_lines(bob) == ["Bob: Is anyone out here?"]
    logs = "".join(path.read_text("utf-8") for path in scene.transcripts.rglob("*.log"))
    assert "Alice" in logs and "room" in logs and "!voice" not in logs

    # A link works once, and not after it expired.
    again = await scene.open(alice_url)
    await until(
        again, scene.host, "the reused link refused", "document.querySelector('#state').dataset.state === 'refused'"
    )
    assert "already used" in (await again.text_content("#state") or "")
    stale = InviteSigner(SecretStr(SECRET), clock=lambda: time.time() - 3600).mint("example", "Alice", 5)
    expired = await scene.open(invite_link(f"{scene.web}/voice/", stale))
    await until(
        expired, scene.host, "the expired link refused", "document.querySelector('#state').dataset.state === 'refused'"
    )
    assert "expired" in (await expired.text_content("#state") or "")
    await expired.screenshot(path=str(SCREENSHOTS / "voice-page-refused.png"))
    for page in (alice, bob, again, expired):
        await page.close()
    for url in (alice_url, bob_url):  # invites are secrets until used: never in the host's output
        assert url.split("#invite=")[1] not in scene.host.output()

    await _table(scene)


async def _table(scene: Scene) -> None:
    """The game master places Carol by the table's Bram on the map, invites her, and drags her away while he answers."""
    master = await scene.browser.new_page(viewport={"width": 1100, "height": 760})
    await master.goto(f"{scene.web}/table/tavern")
    await until(master, scene.host, "the board", "document.querySelector('#state').dataset.state === 'live'")
    await master.fill("#player-name", "Carol")
    await master.click("#add button")  # placed 4 steps south of the centre, where Bram stands (hearing range 8)
    await master.click("button[data-player=Carol]")
    await until(
        master, scene.host, "Carol's invite", "document.querySelector('#invite-url').value.includes('#invite=')"
    )
    carol = await scene.open(await master.input_value("#invite-url"))
    # Dave sits at the table too, west of Bram, only listening: he shows Bram still talking after Carol has left.
    async with httpx.AsyncClient(base_url=scene.web) as api:
        dave_at = {"tokens": [{"name": "Dave", "kind": "player", "x": -4, "z": 0, "yaw": 270}]}
        assert (await api.put("/api/table/tavern/tokens", json=dave_at)).status_code == 200
        invited = await api.post("/api/table/tavern/invites", json={"player": "Dave"})
    dave = await scene.open(invited.json()["url"], push_to_talk=True)
    await until(
        carol, scene.host, "Bram in Carol's earshot", "document.querySelector('#earshot').dataset.npcs === 'bram'"
    )
    assert await carol.text_content("#who") == "You are Carol on tavern."
    await until(carol, scene.host, "Bram's voice on Carol's page", "window.voiceStats.framesReceived >= 50")
    assert (await stats(carol))["peak"] > 1000
    await carol.screenshot(path=str(SCREENSHOTS / "voice-page-table.png"), full_page=True)
    await master.screenshot(path=str(SCREENSHOTS / "table-map.png"))

    # Dragged to the map's east edge, 40 steps away: past Bram's speaking range (16), so she hears no more of him.
    token = await master.locator("g.token[data-name=Carol]").bounding_box()
    area = await master.locator("#map").bounding_box()
    assert token is not None and area is not None
    await master.mouse.move(token["x"] + token["width"] / 2, token["y"] + token["height"] / 2)
    await master.mouse.down()
    await master.mouse.move(area["x"] + area["width"] - 2, token["y"] + token["height"] / 2, steps=5)
    await master.mouse.up()
    await until(
        master, scene.host, "Carol moved", "document.querySelector('#state').textContent.includes('Carol moved')"
    )
    await asyncio.sleep(1.0)  # frames already queued or in flight still arrive
    carol_before, dave_before = (await stats(carol))["framesReceived"], (await stats(dave))["framesReceived"]
    await until(dave, scene.host, "Bram talking on to Dave", f"window.voiceStats.framesReceived >= {dave_before + 50}")
    assert (await stats(carol))["framesReceived"] == carol_before
    assert (await stats(dave))["framesSent"] == 0
    await until(
        carol, scene.host, "Bram out of Carol's earshot", "document.querySelector('#earshot').dataset.npcs === ''"
    )
