"""How much each NPC has given, per item, player and UTC day, and what is left in its stock.

One writer: the gateway's adapter for the server. Kept in a small JSON file under the data folder so a restart does
not refill the stock or reset the day's limits; a damaged file is moved aside and the ledger starts empty.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

from pydantic import BaseModel

from host.atomic_json import read_model, write_model
from host.errors import NpcHostError
from host.profiles.schema import StockItem


class ActionRefusedError(NpcHostError):
    """The profile does not allow this action (or not now). `reason` is a short code for the transcript."""

    code = "action_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Ledger(BaseModel):
    day: str = ""
    given_today: dict[str, int] = {}  # "npc/item/player" and "npc/item/*" -> count given today
    taken: dict[str, int] = {}  # "npc/item" -> taken from stock since the stock was set


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


class GiveLedger:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._state = (read_model(path, _Ledger) if path is not None else None) or _Ledger()

    def take(self, npc: str, name: str, spec: StockItem, player: str, count: int) -> None:
        """Record a give of `count` or raise `ActionRefusedError` naming the limit it would break."""
        state = self._state
        if state.day != _today():
            state.day, state.given_today = _today(), {}
        if count > spec.max_per_give:
            raise ActionRefusedError("max_per_give", f"{npc} gives at most {spec.max_per_give} {name} at once")
        mine = f"{npc}/{name}/{player.casefold()}"
        everyone = f"{npc}/{name}/*"
        stock_key = f"{npc}/{name}"
        if state.given_today.get(mine, 0) + count > spec.per_player_per_day:
            raise ActionRefusedError("player_limit", f"{player} had their {name} from {npc} today")
        if spec.per_day is not None and state.given_today.get(everyone, 0) + count > spec.per_day:
            raise ActionRefusedError("daily_limit", f"{npc} gave all the {name} it gives in a day")
        if spec.stock is not None and state.taken.get(stock_key, 0) + count > spec.stock:
            raise ActionRefusedError("out_of_stock", f"{npc} has no {name} left")
        state.given_today[mine] = state.given_today.get(mine, 0) + count
        state.given_today[everyone] = state.given_today.get(everyone, 0) + count
        state.taken[stock_key] = state.taken.get(stock_key, 0) + count

    def give_back(self, npc: str, name: str, player: str, count: int) -> None:
        """Undo a `take` whose command the server refused: nothing was handed over."""
        state = self._state
        for key in (f"{npc}/{name}/{player.casefold()}", f"{npc}/{name}/*"):
            state.given_today[key] = max(0, state.given_today.get(key, 0) - count)
        state.taken[f"{npc}/{name}"] = max(0, state.taken.get(f"{npc}/{name}", 0) - count)

    async def save(self) -> None:
        if self.path is not None:
            await asyncio.to_thread(write_model, self.path, self._state.model_copy(deep=True))
