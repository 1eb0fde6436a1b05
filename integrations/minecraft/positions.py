"""Where every player stands, for all players in one RCON round trip: `execute as @a run data get entity @s Pos`.

The server runs the `data get` once per player and RCON concatenates the answers with no separator:
`Alice has the following entity data: [1.5d, 64.0d, -3.2d]Bob has the following entity data: [...]`. The name in
front is the player's display name; a scoreboard team's prefix or suffix decorates it, and only then is `list`
asked (once per new decoration) for the plain names to match. Facing and dimension come from the same command with
`Rotation` and `Dimension`, read for all players every `detail_interval_s` (at least `DETAIL_SPACING` polls apart)
and whenever a new player appears, since they matter less often than where a player walks. A line from a player
whose position is older than `stale_after_s` gets a fresh one-player read before anyone decides who heard it.

While RCON is down the poller waits for the client's next reconnect attempt, logs the outage once and its end once,
and the poll interval stretches with RCON's latency so positions never take more than half of the connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from host.errors import NpcHostError
from host.events import EntityPosition, Position, Positions
from integrations.minecraft import commands
from integrations.minecraft.rcon import RconClient, RconUnavailableError
from integrations.minecraft.replies import run_checked

log = logging.getLogger(__name__)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TAGGED_NUMBER = re.compile(rf"^\s*({_NUMBER})[dDfF]?\s*$")
_ENTITY_DATA = re.compile(r"has the following entity data: (?P<value>.*)$", re.DOTALL)
# One player's answer inside a concatenated reply: a list value (`[...]`, never nested here) or a quoted string.
_EACH_ENTITY = re.compile(r'(?P<name>.*?) has the following entity data: (?P<value>\[[^\]]*\]|"[^"]*")', re.DOTALL)
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


def parse_all_entity_data(reply: str) -> list[tuple[str, str]]:
    """(display name, value) of each player's answer in a concatenated `execute as @a run data get` reply."""
    found = []
    end = 0
    for match in _EACH_ENTITY.finditer(reply):
        found.append((match["name"].strip(), match["value"]))
        end = match.end()
    if reply[end:].strip():
        raise EntityDataError(f"unexpected text after the entity data: {reply[end : end + 80]!r}")
    return found


def _name_in(display: str, names: Sequence[str]) -> str | None:
    """The one plain name among `names` that a decorated display name (`[Guard] Alice`) contains as a word."""
    hits = [name for name in names if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", display)]
    return hits[0] if len(hits) == 1 else None


MAX_DISPLAY_NAMES = 512
DETAIL_SPACING = 4  # facing and dimension at most every 4 position polls' worth of time


class PositionPoller:
    """Polls player positions through the server's shared RCON client (its lock serialises every command)."""

    def __init__(
        self,
        server: str,
        rcon: RconClient,
        *,
        interval_s: float = 0.5,
        detail_interval_s: float = 2.0,
        stale_after_s: float = 1.0,
        npcs: Sequence[EntityPosition] = (),
    ) -> None:
        self.server = server
        self.rcon = rcon
        self.interval_s = interval_s
        self.detail_interval_s = detail_interval_s
        self.stale_after_s = stale_after_s
        self.npcs = list(npcs)
        self.players: dict[str, EntityPosition] = {}
        self.last_poll_s = 0.0  # how long the last poll's round trips took
        self._read_at: dict[str, float] = {}
        self._details_at = float("-inf")
        self._display_names: dict[str, str] = {}  # decorated display name -> plain player name

    async def poll_once(self) -> Positions:
        started = time.monotonic()
        reply = await run_checked(self.rcon.command, "data", commands.data_get_all("Pos"))
        positions: dict[str, tuple[float, float, float]] = {}
        for display, value in parse_all_entity_data(reply):
            name = await self._plain_name(display)
            if name is not None:
                positions[name] = _xyz(value)
        # On a slow server facing and dimension are read less often, so positions keep their pace.
        due = max(self.detail_interval_s, DETAIL_SPACING * self.last_poll_s)
        if set(positions) - set(self.players) or started - self._details_at >= due:
            details = await self._details()
            self._details_at = time.monotonic()
        else:
            details = {name: (p.yaw, p.dimension) for name, p in self.players.items()}
        now = time.monotonic()
        self.players = {
            name: EntityPosition(
                name=name, x=x, y=y, z=z, yaw=details.get(name, (0.0, ""))[0], dimension=_dimension(details, name)
            )
            for name, (x, y, z) in positions.items()
        }
        self._read_at = dict.fromkeys(self.players, now)
        self.last_poll_s = now - started
        return self.snapshot()

    def snapshot(self) -> Positions:
        return Positions(server=self.server, entities=[*self.players.values(), *self.npcs])

    def position(self, name: str) -> Position | None:
        player = self.players.get(name)
        return None if player is None else Position(**player.model_dump(exclude={"name", "kind"}))

    def is_stale(self, name: str) -> bool:
        return time.monotonic() - self._read_at.get(name, float("-inf")) > self.stale_after_s

    async def refresh(self, name: str) -> Position | None:
        """Read one player's position now (one round trip); facing and dimension stay as last read."""
        if not commands.PLAYER_NAME.fullmatch(name):
            return None
        reply = await run_checked(self.rcon.command, "data", commands.data_get(name, "Pos"), expected=_GONE)
        value = parse_entity_data(reply)
        if value is None:
            return self.position(name)
        x, y, z = _xyz(value)
        known = self.players.get(name)
        self.players[name] = EntityPosition(
            name=name,
            x=x,
            y=y,
            z=z,
            yaw=known.yaw if known else 0.0,
            dimension=known.dimension if known else "minecraft:overworld",
        )
        self._read_at[name] = time.monotonic()
        return self.position(name)

    async def run(self, publish: Callable[[Positions], Awaitable[None]]) -> None:
        """Publish positions until cancelled. A server that is down is retried when the RCON client's backoff allows,
        and said once (and once when it is back), not at every poll."""
        down = False
        while True:
            wait_s = max(self.interval_s, self.last_poll_s)
            try:
                positions = await self.poll_once()
            except RconUnavailableError as exc:
                if not down:
                    log.warning("positions on %s paused: %s", self.server, exc.message)
                down = True
                wait_s = max(wait_s, self.rcon.retry_in_s)
            except NpcHostError as exc:  # a rejected command or a reply we cannot parse (counted and logged)
                log.debug("positions on %s not read: %s", self.server, exc)
            else:
                if down:
                    log.info("positions on %s resumed", self.server)
                    down = False
                try:
                    await publish(positions)
                except NpcHostError as exc:  # the hub past its reconnect window: next round
                    log.warning("positions on %s not published: %s", self.server, exc)
            await asyncio.sleep(wait_s)

    async def _details(self) -> dict[str, tuple[float, str]]:
        rotations = await run_checked(self.rcon.command, "data", commands.data_get_all("Rotation"))
        dimensions = await run_checked(self.rcon.command, "data", commands.data_get_all("Dimension"))
        yaws = {}
        for display, value in parse_all_entity_data(rotations):
            name = await self._plain_name(display)
            if name is not None:
                yaws[name] = parse_numbers(value, 2)[0]
        found = {}
        for display, value in parse_all_entity_data(dimensions):
            name = await self._plain_name(display)
            if name is not None:
                found[name] = (yaws.get(name, 0.0), parse_dimension(value))
        return found

    async def _plain_name(self, display: str) -> str | None:
        if commands.PLAYER_NAME.fullmatch(display):
            return display
        if display not in self._display_names:
            names = parse_player_list(await run_checked(self.rcon.command, "list", commands.list_players()))
            name = _name_in(display, names)
            if name is None:
                log.debug("display name %r matches no single online player; skipped", display[:40])
                return None
            if len(self._display_names) >= MAX_DISPLAY_NAMES:
                self._display_names.clear()  # decorations of players long gone; the live ones are matched again
            self._display_names[display] = name
        return self._display_names[display]


_GONE = frozenset({"no_entity"})  # the player left between the chat line and the read


def _xyz(value: str) -> tuple[float, float, float]:
    x, y, z = parse_numbers(value, 3)
    return x, y, z


def _dimension(details: dict[str, tuple[float, str]], name: str) -> str:
    found = details.get(name)
    return found[1] if found and found[1] else "minecraft:overworld"
