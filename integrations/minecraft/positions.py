"""Where every player stands: `list`, then `data get entity <name> Pos|Rotation|Dimension` over RCON.

Replies are parsed by their fixed English tail, never by the name in front of it: a team prefix or a display name
may decorate that name. A player who left (or was renamed) between `list` and `data get` answers "No entity was
found" and is simply skipped this round.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from host.errors import NpcHostError
from host.events import EntityPosition, Positions
from host.log_window import LogWindow
from integrations.minecraft import commands
from integrations.minecraft.rcon import RconClient

log = logging.getLogger(__name__)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TAGGED_NUMBER = re.compile(rf"^\s*({_NUMBER})[dDfF]?\s*$")
_ENTITY_DATA = re.compile(r"has the following entity data: (?P<value>.*)$", re.DOTALL)
_NO_ENTITY = "No entity was found"
_LIST_HEADER = re.compile(
    r"There are (?P<count>\d+)(?: of a max of |/| out of maximum )(?P<max>\d+) players online[:.]?", re.IGNORECASE
)
_GROUP_PREFIX = re.compile(r"^[^:,]*:\s*")


class EntityDataError(NpcHostError):
    code = "entity_data"


def parse_player_list(reply: str) -> list[str]:
    """Names from vanilla (`There are 2 of a max of 20 players online: A, B`), old (`2/20`) and Paper replies."""
    header = _LIST_HEADER.search(reply)
    if header is None:
        raise EntityDataError(f"unexpected reply to 'list': {reply[:120]!r}")
    names: list[str] = []
    for line in reply[header.end() :].splitlines():
        for item in _GROUP_PREFIX.sub("", line.strip()).split(","):
            name = item.strip()
            if commands.PLAYER_NAME.fullmatch(name) and name not in names:
                names.append(name)
    return names


def parse_entity_data(reply: str) -> str | None:
    """The value part of a `data get entity` reply, or None when the entity is not there."""
    if _NO_ENTITY in reply:
        return None
    match = _ENTITY_DATA.search(reply.strip())
    if match is None:
        raise EntityDataError(f"unexpected reply to 'data get entity': {reply[:120]!r}")
    return match["value"].strip()


def parse_numbers(value: str, count: int) -> list[float]:
    """`[1.5d, 64.0d, -3.2d]` -> [1.5, 64.0, -3.2]; exactly `count` numbers."""
    inner = value.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        raise EntityDataError(f"expected a list of {count} numbers, got {value[:80]!r}")
    numbers = []
    for item in inner[1:-1].split(","):
        match = _TAGGED_NUMBER.match(item)
        if match is None:
            raise EntityDataError(f"not a number: {item.strip()[:40]!r} in {value[:80]!r}")
        numbers.append(float(match[1]))
    if len(numbers) != count:
        raise EntityDataError(f"expected {count} numbers, got {len(numbers)} in {value[:80]!r}")
    return numbers


def parse_dimension(value: str) -> str:
    dimension = value.strip().strip('"')
    if not commands.RESOURCE_LOCATION.fullmatch(dimension):
        raise EntityDataError(f"not a dimension id: {value[:80]!r}")
    return dimension


class PositionPoller:
    """Polls player positions through the server's shared RCON client (its lock serialises every command)."""

    def __init__(
        self,
        server: str,
        rcon: RconClient,
        *,
        interval_s: float = 0.5,
        npcs: Sequence[EntityPosition] = (),
    ) -> None:
        self.server = server
        self.rcon = rcon
        self.interval_s = interval_s
        self.npcs = list(npcs)
        # RCON down means a failure every round: one line a minute says so (it was 2 lines a second for as long).
        self._failures = LogWindow(60.0)

    async def player(self, name: str) -> EntityPosition | None:
        pos = parse_entity_data(await self.rcon.command(commands.data_get(name, "Pos")))
        rotation = parse_entity_data(await self.rcon.command(commands.data_get(name, "Rotation")))
        dimension = parse_entity_data(await self.rcon.command(commands.data_get(name, "Dimension")))
        if pos is None or rotation is None or dimension is None:
            return None
        x, y, z = parse_numbers(pos, 3)
        yaw, _pitch = parse_numbers(rotation, 2)
        return EntityPosition(name=name, x=x, y=y, z=z, yaw=yaw, dimension=parse_dimension(dimension))

    async def poll_once(self) -> Positions:
        players = []
        for name in parse_player_list(await self.rcon.command(commands.list_players())):
            try:
                found = await self.player(name)
            except EntityDataError as exc:
                log.warning("position of %s skipped: %s", name, exc)
                continue
            if found is not None:
                players.append(found)
        return Positions(server=self.server, entities=[*players, *self.npcs])

    async def run(self, publish: Callable[[Positions], Awaitable[None]]) -> None:
        """Publish positions every `interval_s` until cancelled; an unreachable server is retried next round."""
        while True:
            try:
                await publish(await self.poll_once())
            except NpcHostError as exc:  # RCON, a reply we cannot parse, or the hub past its reconnect window
                swallowed = self._failures.due(exc.code)
                if swallowed is not None:
                    more = f" ({swallowed} more since the last such line)" if swallowed else ""
                    log.warning("positions on %s not published: %s%s", self.server, exc, more)
            await asyncio.sleep(self.interval_s)
