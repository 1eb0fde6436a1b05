"""The browser profile of the bridge (`/voice/ws`) over a real WebSocket, as a hostile page would use it: origin checks,
one-time invites, a session that is exactly its invite's player, the plugin path's limits, chat, and the mix."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
import pytest_asyncio
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from host.events import PlayerSaid, PlayerSpeechStarted, PlayerUtterance
from host.invites import InviteRedeemer, InviteRefusedError, InviteSigner
from proximity_audio.bridge_listener import BridgeListener
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.browser_protocol import SessionRefusedError
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import HEADER, MAGIC, CloseCode, ErrorCode, FrameKind, encode_frame
from proximity_audio.world import SpatialWorld
from tests.bridge_support import at, eventually, frames_of, recording_48k

SERVER = "survival"
ORIGIN = "https://voice.example.org"
SILENT = np.zeros(960, dtype=np.int16).tobytes()


@dataclass
class Page:
    url: str
    signer: InviteSigner
    bridge: BridgeServer
    world: SpatialWorld
    chats: list[PlayerSaid] = field(default_factory=list)
    heard: list[PlayerUtterance | PlayerSpeechStarted] = field(default_factory=list)

    def invite(self, player: str, server: str = SERVER) -> str:
        return self.signer.mint(server, player, 5)

    @asynccontextmanager
    async def open(self, invite: str, origin: str = ORIGIN) -> AsyncIterator[ClientConnection]:
        async with connect(self.url, origin=origin) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "browser_hello", "protocol_versions": [1], "invite": invite}))
            yield ws


async def next_error(ws: ClientConnection, code: str) -> dict[str, object]:
    while (error := await next_of(ws, "error"))["code"] != code:
        pass
    return error


async def next_of(ws: ClientConnection, kind: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and (data := json.loads(message))["type"] == kind:
                return dict(data)


@pytest_asyncio.fixture(loop_scope="function")
async def page() -> AsyncIterator[Page]:
    world = SpatialWorld()
    world.place_npc("bram", at(0, 0), hearing_range=8, speaking_range=16)
    signer = InviteSigner(SecretStr("page-test-secret"))
    redeemer = InviteRedeemer(signer)
    chats: list[PlayerSaid] = []
    heard: list[PlayerUtterance | PlayerSpeechStarted] = []

    async def on_chat(said: PlayerSaid) -> None:
        chats.append(said)

    async def on_speech(event: PlayerUtterance | PlayerSpeechStarted) -> None:
        heard.append(event)

    limits = BridgeLimits(max_players=2)
    bridge = BridgeServer(
        world,
        server=SERVER,
        token=None,
        on_utterance=on_speech,
        on_speech_started=on_speech,
        on_chat=on_chat,
        limits=limits,
        npc_names=lambda: {"bram": "Bram"},
    )

    def redeem(token: str) -> tuple[str, str]:
        try:
            invite = redeemer.redeem(token)
        except InviteRefusedError as exc:
            raise SessionRefusedError(exc.message) from None
        return invite.server, invite.player

    await bridge.open()
    listener = BridgeListener([bridge], limits, redeem=redeem, page_origins=[ORIGIN])
    await listener.start("127.0.0.1", 0)
    try:
        yield Page(f"ws://127.0.0.1:{listener.port}/voice/ws", signer, bridge, world, chats, heard)
    finally:
        await listener.close()
        await bridge.close()


async def test_an_invite_opens_a_page_as_its_player_once(page: Page) -> None:
    invite = page.invite("Alice")
    async with page.open(invite) as ws:
        welcome = await next_of(ws, "browser_welcome")
        assert (welcome["server"], welcome["player"]) == (SERVER, "Alice")
        assert [npc["npc"] for npc in welcome["npcs"]] == ["bram"]  # type: ignore[attr-defined]
        assert welcome["npc_names"] == {"bram": "Bram"}
        assert await next_of(ws, "earshot") == {"type": "earshot", "position_known": False, "npcs": []}
        page.world.move_player("Alice", at(2, 0))  # the game reports her position
        assert await next_of(ws, "earshot") == {"type": "earshot", "position_known": True, "npcs": ["bram"]}
    async with page.open(invite) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.BAD_TOKEN
    assert "already used" in closed.value.rcvd.reason
    assert page.world.player("Alice") is not None  # the page never owned her position


@pytest.mark.parametrize(
    "make",
    [
        lambda signer: InviteSigner(SecretStr("page-test-secret"), clock=lambda: time.time() - 600).mint(
            SERVER, "Alice", 5
        ),
        lambda signer: InviteSigner(SecretStr("another-host")).mint(SERVER, "Alice", 5),
        lambda signer: signer.mint(SERVER, "Alice", 5)[:-2] + "AA",
        lambda signer: signer.mint("creative", "Alice", 5),
        lambda signer: "not-a-token",
    ],
    ids=["expired", "other-host", "tampered", "other-server", "garbage"],
)
async def test_bad_invites_open_nothing(page: Page, make: object) -> None:
    invite = make(page.signer)  # type: ignore[operator]
    async with page.open(invite) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.BAD_TOKEN
    assert invite not in closed.value.rcvd.reason
    assert page.bridge.pages == []


@pytest.mark.parametrize("origin", ["https://evil.example.com", None])
async def test_pages_from_other_origins_are_refused(page: Page, origin: str | None) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(page.url, origin=origin):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_a_page_is_its_player_and_nobody_else(page: Page) -> None:
    page.world.move_player("Alice", at(2, 0))
    async with page.open(page.invite("Alice")) as ws:
        await next_of(ws, "browser_welcome")
        await ws.send(json.dumps({"type": "player_join", "index": 1, "player": "Bob"}))
        assert (await next_of(ws, "error"))["code"] == ErrorCode.UNKNOWN_TYPE
        await ws.send(json.dumps({"type": "positions", "players": [{"index": 0, "x": 500, "y": 64, "z": 0}]}))
        assert (await next_of(ws, "error"))["code"] == ErrorCode.UNKNOWN_TYPE
        await ws.send(json.dumps({"type": "npc_stop", "npc": "bram"}))  # only by speaking, and only its own answer
        assert (await next_of(ws, "error"))["code"] == ErrorCode.UNKNOWN_TYPE
        await ws.send(encode_frame(FrameKind.MICROPHONE, 1, 0, SILENT))  # another index
        assert (await next_of(ws, "error"))["code"] == ErrorCode.UNKNOWN_PLAYER
        await ws.send(json.dumps({"type": "chat", "text": "Bram, a room please"}))
        await eventually(lambda: len(page.chats) == 1)
    [said] = page.chats
    assert (said.player, said.text, said.source) == ("Alice", "Bram, a room please", "chat")
    assert said.position is not None and said.position.x == 2  # where the game puts her
    assert page.world.player("Alice") == at(2, 0)


async def test_a_page_has_the_plugins_frame_rate_and_chat_limits(page: Page) -> None:
    async with page.open(page.invite("Alice")) as ws:
        await next_of(ws, "browser_welcome")
        await ws.send(b"".join(encode_frame(FrameKind.MICROPHONE, 0, n, SILENT) for n in range(60)))
        assert (await next_of(ws, "error"))["code"] == ErrorCode.RATE_LIMITED
        for n in range(5):
            await ws.send(json.dumps({"type": "chat", "text": f"line {n}"}))
        assert (await next_of(ws, "error"))["code"] == ErrorCode.RATE_LIMITED
        await ws.send(json.dumps({"type": "chat", "text": "x" * 257}))
        assert "text" in str((await next_error(ws, ErrorCode.BAD_MESSAGE))["message"])
    assert len(page.chats) == 3


async def test_a_huge_integer_from_a_page_gets_an_error_and_the_page_stays(page: Page) -> None:
    async with page.open(page.invite("Alice")) as ws:
        await next_of(ws, "browser_welcome")
        await ws.send('{"type": "chat", "text": "hi", "n": ' + "9" * 5000 + "}")
        assert "not valid JSON" in str((await next_error(ws, ErrorCode.BAD_MESSAGE))["message"])
        await ws.send(json.dumps({"type": "chat", "text": "Bram, still there?"}))
        await eventually(lambda: len(page.chats) == 1)
    assert page.chats[0].text == "Bram, still there?"


async def test_a_newer_page_replaces_the_older_and_pages_are_capped(page: Page) -> None:
    async with page.open(page.invite("Alice")) as first:
        await next_of(first, "browser_welcome")
        async with page.open(page.invite("Alice")) as second:
            await next_of(second, "browser_welcome")
            with pytest.raises(ConnectionClosed) as closed:
                await next_of(first, "never")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.REPLACED
            async with page.open(page.invite("Bob")) as bob:
                await next_of(bob, "browser_welcome")
                async with page.open(page.invite("Carol")) as carol:  # max_players is 2
                    with pytest.raises(ConnectionClosed) as full:
                        await carol.recv()
                assert full.value.rcvd is not None and full.value.rcvd.code == CloseCode.TOO_MANY_SESSIONS


async def test_short_of_memory_a_new_page_is_refused_and_an_open_one_stays(page: Page) -> None:
    guard = page.bridge.memory
    async with page.open(page.invite("Alice")) as alice:
        await next_of(alice, "browser_welcome")
        guard.ceiling = 2**20  # 1 MB: this process is far above it
        guard.check()
        async with page.open(page.invite("Bob")) as bob:
            with pytest.raises(ConnectionClosed) as refused:
                await bob.recv()
        assert refused.value.rcvd is not None and refused.value.rcvd.code == CloseCode.TRY_AGAIN_LATER
        assert "short of memory" in refused.value.rcvd.reason
        await alice.send(json.dumps({"type": "chat", "text": "Bram, are you there?"}))
        await eventually(lambda: len(page.chats) == 1)  # the page already open is served
        guard.ceiling = 2**50
        guard.check()
        async with page.open(page.invite("Bob")) as bob:
            assert (await next_of(bob, "browser_welcome"))["player"] == "Bob"


async def test_only_a_player_in_range_hears_the_npc(page: Page) -> None:
    page.world.move_player("Alice", at(4, 0))
    page.world.move_player("Bob", at(40, 0))
    async with page.open(page.invite("Alice")) as alice, page.open(page.invite("Bob")) as bob:
        await next_of(alice, "browser_welcome")
        await next_of(bob, "browser_welcome")
        tone = (np.sin(np.arange(48_000) / 48_000 * 2 * np.pi * 440) * 8000).astype(np.int16)
        page.bridge.play("bram", tone, 48_000)
        frames = await _mixed_frames(alice, count=10)
        assert all(index == 0 for index, _ in frames)
        assert max(int(np.abs(pcm).max()) for _, pcm in frames) > 1000
        assert await _audio_until_stream_end(bob) == 0  # Bob was told the stream ended, and got no audio at all


async def _audio_until_stream_end(ws: ClientConnection) -> int:
    """How many binary messages arrive before `npc_stream_end`."""
    audio = 0
    async with asyncio.timeout(10):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                audio += 1
            elif json.loads(message)["type"] == "npc_stream_end":
                return audio


async def _mixed_frames(ws: ClientConnection, *, count: int) -> list[tuple[int, np.ndarray]]:
    frames: list[tuple[int, np.ndarray]] = []
    async with asyncio.timeout(10):
        while len(frames) < count:
            message = await ws.recv()
            if isinstance(message, bytes):
                assert message[0] == MAGIC and message[1] == FrameKind.MIXED
                index = int.from_bytes(message[2:4], "little")
                frames.append((index, np.frombuffer(message[HEADER.size :], dtype=np.int16)))
    return frames


async def test_a_page_is_heard_as_its_player_where_the_game_puts_them(page: Page) -> None:
    page.world.move_player("Alice", at(3, 0))
    async with page.open(page.invite("Alice")) as ws:
        await next_of(ws, "browser_welcome")
        for sequence, frame in enumerate(frames_of(recording_48k("bram_room.wav"), trailing_silence_s=1.0)):
            await ws.send(encode_frame(FrameKind.MICROPHONE, 0, sequence, frame.tobytes()))
            await asyncio.sleep(0.02)  # in real time, as a microphone
        await eventually(lambda: any(isinstance(event, PlayerUtterance) for event in page.heard))
    start, utterance = page.heard[0], page.heard[-1]
    assert isinstance(start, PlayerSpeechStarted) and start.player == "Alice"  # the barge-in cue, as for a plugin
    assert isinstance(utterance, PlayerUtterance) and utterance.player == "Alice"
    assert utterance.position == at(3, 0)
    assert len(utterance.audio) > 16_000 * 2  # more than a second of speech at 16 kHz
