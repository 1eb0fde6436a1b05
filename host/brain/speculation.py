"""Speculative persona turns: the answer starts on the speculative transcript, during the rest of the endpoint wait.

    PlayerSaidTentative -> `NpcBrain.speculate`: the persona turn runs until its first sentence, held in a
                           `SentenceGate` (nothing is published, spoken, stored, remembered or written; the
                           speech role in this process synthesises it ahead: host/voice/speech_ahead.py)
    PlayerSaid          -> `claim`: same player and same text: the turn is handed over (committed) and the gate
                           opens: what it wrote goes out at once, the rest as it is written; else it is discarded
    PlayerSpeechStarted, PlayerLeft, a newer tentative line, `TTL_S` without a PlayerSaid, another player's line
    being answered (a held turn parks its model's one worker) -> discarded

A discarded turn's task is cancelled, which closes the LLM stream (generation stops at its next token) and leaves
its `PersonaTurn.result` unread, and the speech made ahead for its held sentence is stopped: it costs the tokens of
its first sentence and nothing else. At most one speculation
per player. `npc_host_speculative_turns_total{outcome="committed"|"discarded"}` counts the outcomes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from host import metrics
from host.brain.turn import TurnSentence
from host.events import PlayerSaid, PlayerSaidTentative, PlayerSpeechStarted
from host.player_state import PlayerMemory

if TYPE_CHECKING:
    from host.brain.engine import StartedTurn

log = logging.getLogger(__name__)

# A speculation nobody claims (another brain process took the line, or it was never published) stops this long after
# it began: it has written its reply by then and only holds memory.
TTL_S = 10.0

Key = tuple[str, str]  # (server, player)


class SentenceGate:
    """Holds a turn's first sentence until `open`, then hands it, and every later one, to the real consumer in
    order. Until then the turn waits after its first sentence: a speculative answer writes no more than what the
    first audio needs, and a discarded one costs that much (the LLM computes a token only when its reader asks)."""

    def __init__(
        self,
        on_hold: Callable[[TurnSentence], None] | None = None,
        on_drop: Callable[[TurnSentence], None] | None = None,
    ) -> None:
        self._on_hold = on_hold  # told of each sentence as it is held (to have its speech made ahead)
        self._on_drop = on_drop  # told of each held sentence when the turn is discarded (its speech is not needed)
        self._held: list[TurnSentence] = []
        self._deliver: Callable[[TurnSentence], Awaitable[None]] | None = None
        self._lock = asyncio.Lock()  # a sentence arriving while the held ones go out waits its turn
        self._opened = asyncio.Event()

    async def __call__(self, sentence: TurnSentence) -> None:
        async with self._lock:
            if self._deliver is not None:
                await self._deliver(sentence)
                return
            self._held.append(sentence)
            if self._on_hold is not None:
                self._on_hold(sentence)
        await self._opened.wait()  # delivered by `open`

    async def open(self, deliver: Callable[[TurnSentence], Awaitable[None]]) -> None:
        async with self._lock:
            self._deliver = deliver
            held, self._held = self._held, []
            for sentence in held:
                await deliver(sentence)
            self._opened.set()

    def drop(self) -> None:
        """The turn is discarded: what it held will never be said."""
        held, self._held = self._held, []
        if self._on_drop is not None:
            for sentence in held:
                self._on_drop(sentence)

    @property
    def held(self) -> int:
        return len(self._held)


@dataclass(eq=False)
class Speculation:
    """One speculative turn: `task` runs `turn` with its sentences going into `gate`."""

    tentative: PlayerSaidTentative
    npc: str
    turn: StartedTurn
    gate: SentenceGate
    task: asyncio.Task[None]
    expiry: asyncio.TimerHandle | None = None
    committed: bool = False
    discarded: bool = False

    def matches(self, said: PlayerSaid) -> bool:
        """The final line is what the turn was started on (the player said nothing more, STT heard the same)."""
        tentative = self.tentative
        return (said.server, said.player, said.text, said.language) == (
            tentative.server,
            tentative.player,
            tentative.text,
            tentative.language,
        )


class SpeculativeTurns:
    """The speculations of one brain process, at most one per player."""

    def __init__(self) -> None:
        self._by_player: dict[Key, Speculation] = {}
        # When each player's last final line was made, to recognise a tentative line that came after it (forgotten
        # with the player).
        self._said_at: PlayerMemory[Key, float] = PlayerMemory()

    def __len__(self) -> int:
        return len(self._by_player)

    def of(self, server: str, player: str) -> Speculation | None:
        """The player's speculative turn, if one is running or held."""
        return self._by_player.get((server, player))

    def stale(self, tentative: PlayerSaidTentative) -> bool:
        """The final line of this player was made after this tentative one: it came late, and is not acted on."""
        return self._said_at.get((tentative.server, tentative.player), 0.0) >= tentative.ts

    def add(self, speculation: Speculation) -> None:
        key = (speculation.tentative.server, speculation.tentative.player)
        self.discard(*key, reason="a newer tentative line")
        self._by_player[key] = speculation
        speculation.expiry = asyncio.get_running_loop().call_later(TTL_S, self._expire, key, speculation)

    def claim(self, said: PlayerSaid, npc: str) -> Speculation | None:
        """The speculation `npc` started on exactly this line, now the caller's to commit; None if there is none.
        A speculation of the player on another line or by another NPC is discarded."""
        key = (said.server, said.player)
        self._said_at[key] = said.ts
        speculation = self._by_player.get(key)
        if speculation is None:
            return None
        if speculation.npc != npc or not speculation.matches(said):
            self.discard(*key, reason="the final line differs")
            return None
        del self._by_player[key]
        self._settle(speculation)
        speculation.committed = True
        metrics.SPECULATIVE_TURNS_TOTAL.labels(server=said.server, npc=npc, outcome="committed").inc()
        return speculation

    def settle_line(self, said: PlayerSaid) -> None:
        """The final line was handled: a speculation still held for its player was not claimed by any answer."""
        self._said_at[(said.server, said.player)] = max(self._said_at.get((said.server, said.player), 0.0), said.ts)
        self.discard(said.server, said.player, reason="the line was not answered by it")

    def discard(self, server: str, player: str, *, reason: str) -> bool:
        speculation = self._by_player.pop((server, player), None)
        if speculation is None:
            return False
        self._settle(speculation)
        speculation.discarded = True
        speculation.gate.drop()  # speech made ahead for it stops
        speculation.task.cancel()  # closes the LLM stream: no more tokens
        speculation.task.add_done_callback(_retrieve)
        metrics.SPECULATIVE_TURNS_TOTAL.labels(server=server, npc=speculation.npc, outcome="discarded").inc()
        log.debug("speculative turn of %s for %s discarded: %s", speculation.npc, player, reason)
        return True

    def forget_player(self, server: str, player: str) -> None:
        self.discard(server, player, reason="the player left")
        self._said_at.forget((server, player))

    def speaking_again(self, started: PlayerSpeechStarted) -> None:
        """The player started speaking after their tentative line: what it was started on is not the whole line. A
        speech start from before it (the control and said streams are not ordered with each other) changes nothing;
        if they went on during the speculative STT, the final line differs and `claim` drops it."""
        speculation = self._by_player.get((started.server, started.player))
        if speculation is not None and started.ts > speculation.tentative.ts:
            self.discard(started.server, started.player, reason="the player is speaking again")

    def discard_others(self, server: str, player: str) -> None:
        """Another answer starts: every speculation of another player is dropped, so none holds the model meanwhile."""
        for other in [key for key in self._by_player if key != (server, player)]:
            self.discard(*other, reason="another player's line is being answered")

    def discard_all(self) -> None:
        for server, player in list(self._by_player):
            self.discard(server, player, reason="stopping")

    def _expire(self, key: Key, speculation: Speculation) -> None:
        if self._by_player.get(key) is speculation:
            self.discard(*key, reason="no final line came")

    @staticmethod
    def _settle(speculation: Speculation) -> None:
        if speculation.expiry is not None:
            speculation.expiry.cancel()


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a discarded turn that failed is not reported as never retrieved
