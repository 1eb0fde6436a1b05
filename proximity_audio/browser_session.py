"""One voice page's connection after its invite was redeemed: exactly one player, whose position the game owns.

It is a bridge session with its player joined at index 0 from the start; microphone frames, the frame-rate limit,
VAD, barge-in and the player's stereo mix are the plugin path's own. What differs: the page may not join, leave or
move players, it may type chat lines, and it is told which NPCs hear the player and what was said within earshot.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection

from host.events import PlayerSaid
from proximity_audio.bridge_session import BridgeSession, SessionContext
from proximity_audio.browser_protocol import (
    BROWSER_INDEX,
    BrowserHello,
    Chat,
    Earshot,
    Line,
    parse_browser_message,
)
from proximity_audio.hooks import call_safely
from proximity_audio.limits import FrameRateLimiter
from proximity_audio.protocol import ErrorCode, Ping, PlayerJoin, Pong, ProtocolError

EARSHOT_INTERVAL_S = 0.5
# Typed lines per page: as fast as a person types, not as fast as a script.
CHAT_PER_SECOND = 0.5
CHAT_BURST = 3


class BrowserSession(BridgeSession):
    owns_positions = False

    def __init__(self, ws: ServerConnection, player: str, context: SessionContext) -> None:
        super().__init__(ws, context, mode="mixed", plugin=f"voice page of {player}")
        self.player = player
        self._chat_budget = FrameRateLimiter(CHAT_PER_SECOND, CHAT_BURST)
        self._earshot: Earshot | None = None
        self._join(PlayerJoin(index=BROWSER_INDEX, player=player), admitted=True)  # serve_page checked memory

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch_earshot(), name=f"earshot:{self.player}")
        try:
            await super().run()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)

    def tell(self, line: Line) -> None:
        self._outbox.put_stream_message(line.model_dump_json())

    async def _on_text(self, text: str) -> None:
        message = parse_browser_message(text)
        if isinstance(message, Ping):
            self.send(Pong(nonce=message.nonce))
        elif isinstance(message, Chat):
            await self._chat(message.text)
        elif isinstance(message, BrowserHello):
            raise ProtocolError("browser_hello was already accepted on this connection")

    async def _chat(self, text: str) -> None:
        if not self._chat_budget.allow():
            raise ProtocolError("chat lines come too fast; this one was dropped", code=ErrorCode.RATE_LIMITED)
        said = PlayerSaid(
            server=self._ctx.server, player=self.player, text=text, position=self._ctx.world.player(self.player)
        )
        await call_safely("chat", self._ctx.hooks.on_chat, said)

    async def _watch_earshot(self) -> None:
        world = self._ctx.world
        while True:
            now = Earshot(position_known=world.player(self.player) is not None, npcs=world.npcs_hearing(self.player))
            if now != self._earshot:
                self._earshot = now
                self.send(now)
            await asyncio.sleep(EARSHOT_INTERVAL_S)
