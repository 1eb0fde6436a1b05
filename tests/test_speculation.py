"""The speculations one brain process holds: a real answer starting drops every other player's head start, so no
held turn keeps the model's one worker while that answer waits for it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from host.brain.speculation import SentenceGate, Speculation, SpeculativeTurns
from host.events import PlayerSaid, PlayerSaidTentative, PlayerSpeechStarted


def _held(server: str, player: str, text: str) -> Speculation:
    # The turn itself is not read here: only the task holding it matters (it is what parks the model).
    task = asyncio.get_running_loop().create_task(asyncio.Event().wait())
    tentative = PlayerSaidTentative(server=server, player=player, text=text, utterance_id=f"u-{player}")
    return Speculation(tentative, "bram", cast(Any, None), SentenceGate(), task)


async def test_answering_one_player_drops_the_other_players_held_turns() -> None:
    turns = SpeculativeTurns()
    alice, bob = _held("village", "Alice", "A room, please."), _held("village", "Bob", "Any news?")
    turns.add(alice)
    turns.add(bob)
    turns.discard_others("village", "Alice")
    await asyncio.sleep(0)
    assert bob.discarded and bob.task.cancelled()
    assert turns.of("village", "Bob") is None
    said = PlayerSaid(server="village", player="Alice", text="A room, please.", source="voice")
    assert turns.claim(said, "bram") is alice and not alice.task.done()  # her own head start is still hers
    alice.task.cancel()


async def test_a_speech_start_from_before_the_tentative_line_keeps_it() -> None:
    turns = SpeculativeTurns()
    alice = _held("village", "Alice", "A room, please.")
    earlier = PlayerSpeechStarted(server="village", player="Alice", ts=alice.tentative.ts - 2.0)
    turns.add(alice)
    turns.speaking_again(earlier)  # the start of that very line, delivered late
    assert turns.of("village", "Alice") is alice
    turns.speaking_again(PlayerSpeechStarted(server="village", player="Alice", ts=alice.tentative.ts + 0.5))
    await asyncio.sleep(0)
    assert turns.of("village", "Alice") is None and alice.task.cancelled()
