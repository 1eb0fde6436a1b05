"""NPC sentences shown in chat, and the record corrected when the server did not show one.

Each sentence goes out as `tellraw` to the players within the NPC's speaking range. When the server rejects it, or
nobody is in range any more ("No player was found"), or RCON is down, the turn's record must not claim the players
read it: the first failed sentence of a turn yields an `NpcTurnCut` holding only the sentences shown before it, and
the turn's later sentences are not sent (a reply with a hole in the middle reads worse than a short one).

On a server with a voice bridge the sentence may still have been heard, so there the chat line is the only thing
that failed and the record is left to the voice path.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from host.events import NpcSentence, NpcTurnCut, Position
from integrations.minecraft import commands
from integrations.minecraft.commands import ChatStyle
from integrations.minecraft.rcon import RconClient, RconError
from integrations.minecraft.replies import CommandRejectedError, run_checked

log = logging.getLogger(__name__)

MAX_TRACKED_TURNS = 256  # turns whose shown sentences are remembered; older turns are long finished
_NOBODY_IN_RANGE = frozenset({"no_player"})


class _Turn:
    def __init__(self) -> None:
        self.shown: list[str] = []
        self.failed = False


class ChatDelivery:
    def __init__(self, rcon: RconClient, style: ChatStyle, *, record_failures: bool) -> None:
        self.rcon = rcon
        self.style = style
        self.record_failures = record_failures
        self._turns: OrderedDict[str, _Turn] = OrderedDict()

    async def show(self, name: str, sentence: NpcSentence, at: Position, radius: float) -> NpcTurnCut | None:
        """Show one sentence; the cut to publish when this is the first sentence of its turn that failed."""
        turn = self._turn(sentence.turn_id)
        if turn.failed:
            return None
        try:
            for command in commands.tellraw_nearby(name, sentence.text, at, radius, self.style):
                reply = await run_checked(self.rcon.command, "tellraw", command, expected=_NOBODY_IN_RANGE)
                if reply.strip():  # only "No player was found" is left: nobody stands in range
                    log.info("%s spoke with nobody in range on %s", name, self.rcon.address)
                    raise _NotShownError
        except (_NotShownError, CommandRejectedError):
            return self._failed(turn, sentence)
        except RconError as exc:
            log.warning("%s's line not shown: %s", name, exc.message)
            return self._failed(turn, sentence)
        turn.shown.append(sentence.text)
        return None

    def _failed(self, turn: _Turn, sentence: NpcSentence) -> NpcTurnCut | None:
        turn.failed = True
        if not self.record_failures:
            return None
        return NpcTurnCut(
            server=sentence.server,
            npc=sentence.npc,
            player=sentence.player,
            turn_id=sentence.turn_id,
            heard=" ".join(turn.shown),
            sentences_heard=len(turn.shown),
        )

    def _turn(self, turn_id: str) -> _Turn:
        turn = self._turns.get(turn_id)
        if turn is None:
            turn = self._turns[turn_id] = _Turn()
            while len(self._turns) > MAX_TRACKED_TURNS:
                self._turns.popitem(last=False)
        return turn


class _NotShownError(Exception):
    """Internal: the server took the line but nobody was in range to see it."""
