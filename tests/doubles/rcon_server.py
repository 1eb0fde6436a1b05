"""A vanilla-exact RCON server on 127.0.0.1, for tests (no Minecraft server runs here).

It copies net.minecraft.server.rcon.thread.RconClient: each request is taken from ONE `read()` of at most 1460 bytes,
and the connection is dropped when that read is shorter than 10 bytes or its length field is not the read size
minus 4 (so a request split across reads, or two requests in one read, kill the connection, as on a real server). The
body runs to the first NUL. Type 3 logs in (a wrong or empty password answers id -1, type 2), type 2 runs a command
(before login: id -1), any other type answers "Unknown request <hex type>" with the request's id. Replies are cut every
4096 characters with no end marker. Commands run one at a time across all connections, as on the game thread.

`MinecraftWorld` is a command handler that keeps just enough game state to answer the host's commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from integrations.minecraft.rcon_packets import encode_packet

CommandHandler = Callable[[str], str | Awaitable[str]]

_READ_SIZE = 1460
_SPLIT = 4096


class RconTestServer:
    def __init__(self, password: str, handler: CommandHandler | None = None) -> None:
        self.password = password
        self.handler = handler or unknown_command
        self.host = "127.0.0.1"
        self.port = 0
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.logins = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._game_thread = asyncio.Lock()
        self._received = asyncio.Condition()
        self._busy = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every connection, as a server shutting down does."""
        if self._server is not None:
            self._server.close()
        self.disconnect_all()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def wait_for_commands(self, pattern: str, count: int = 1) -> list[str]:
        """The commands received so far that match `pattern` (re.search), once there are at least `count`."""
        async with self._received:
            await self._received.wait_for(lambda: len(self._matching(pattern)) >= count)
            return self._matching(pattern)

    def _matching(self, pattern: str) -> list[str]:
        return [command for command in self.commands if re.search(pattern, command)]

    def disconnect_all(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def __aenter__(self) -> RconTestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._session(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        authed = False
        while True:
            data = await reader.read(_READ_SIZE)
            if len(data) < 10:
                if data:
                    self.dropped += 1
                return
            (length,) = struct.unpack_from("<i", data)
            if length != len(data) - 4:
                self.dropped += 1
                return
            request_id, packet_type = struct.unpack_from("<ii", data, 4)
            body = data[12:].split(b"\x00", 1)[0].decode("utf-8", errors="replace")
            if packet_type == 2:
                if not authed:
                    writer.write(encode_packet(-1, 2, ""))
                    continue
                reply = await self._run(body)
                while True:  # vanilla's do/while: an empty reply is still one packet
                    writer.write(encode_packet(request_id, 0, reply[:_SPLIT]))
                    reply = reply[_SPLIT:]
                    if not reply:
                        break
            elif packet_type == 3:
                authed = bool(body) and body == self.password
                writer.write(encode_packet(request_id if authed else -1, 2, ""))
                self.logins += authed
            else:
                writer.write(encode_packet(request_id, 0, f"Unknown request {packet_type & 0xFFFFFFFF:x}"))
            await writer.drain()

    async def _run(self, command: str) -> str:
        if self._busy:
            self.errors.append(f"command {command!r} overlapped another")
        async with self._game_thread:
            self._busy = True
            try:
                self.commands.append(command)
                async with self._received:
                    self._received.notify_all()
                reply = self.handler(command)
                return await reply if inspect.isawaitable(reply) else reply
            finally:
                self._busy = False


_SUMMON = re.compile(
    r"execute in (?P<dim>\S+) run summon (?P<entity>\S+) (?P<x>\S+) (?P<y>\S+) (?P<z>\S+) (?P<nbt>\{.*\})"
)
_KILL = re.compile(r"kill @e\[tag=(?P<tag>[a-z0-9_.]+)\]")
_DATA_GET = re.compile(r"data get entity (?P<name>\w+) (?P<path>Pos|Rotation|Dimension)")
_DATA_GET_ALL = re.compile(r"execute as @a run data get entity @s (?P<path>Pos|Rotation|Dimension)")
_DATA_GET_PROBE = re.compile(r"data get entity @e\[tag=(?P<tag>[a-z0-9_.]+),limit=1\]")
_IF_ENTITY = re.compile(r"execute if entity @e\[tag=(?P<tag>[a-z0-9_.]+),limit=1\](?: run (?P<run>.+))?")
_TELLRAW = re.compile(r"(?:execute in (?P<dim>\S+) run )?tellraw (?P<target>\S+) (?P<json>[\[{\"].*)")
_NEAR = re.compile(r"@a\[x=(?P<x>[-\d.]+),y=(?P<y>[-\d.]+),z=(?P<z>[-\d.]+),distance=\.\.(?P<r>[\d.]+)\]")
_TP = re.compile(
    r"(?:execute in (?P<dim>\S+) run )?tp @e\[tag=(?P<tag>[a-z0-9_.]+),limit=1\] (?P<x>\S+) (?P<y>\S+) (?P<z>\S+)"
    r"(?: facing (?P<fx>\S+) (?P<fy>\S+) (?P<fz>\S+))?"
)
_FACE = re.compile(r"execute as @e\[tag=(?P<tag>[a-z0-9_.]+),limit=1\] at @s run tp @s ~ ~ ~ facing \S+ \S+ \S+")
_GIVE = re.compile(r"give (?P<player>\w+) (?P<item>[a-z0-9_.:-]+) (?P<count>\d+)")


def unknown_command(command: str) -> str:
    """Vanilla's parse error, as RCON delivers it: the message and the command up to the fault, with no separator."""
    return f"Unknown or incomplete command, see below for error{command}<--[HERE]"


@dataclass
class Entity:
    kind: str
    x: str
    y: str
    z: str
    dimension: str
    nbt: str

    @property
    def tags(self) -> list[str]:
        found = re.search(r"Tags:(\[[^\]]*\])", self.nbt)
        return list(json.loads(found[1])) if found else []

    @property
    def name(self) -> str:
        found = re.search(r'\\?"text\\?":\\?"(?P<name>[^"\\]*)', self.nbt)
        return found["name"] if found else self.kind


@dataclass
class Player:
    x: float
    y: float
    z: float
    yaw: float = 0.0
    dimension: str = "minecraft:overworld"
    team_prefix: str = ""  # a scoreboard team's prefix decorates the name in command feedback


@dataclass
class MinecraftWorld:
    """A command handler that answers like a vanilla 1.21 server for the commands the host sends: `list`,
    `data get entity` (one player, or `execute as @a` for all of them, replies concatenated as RCON does), `summon`,
    `kill`, `tp` and `tellraw` (to a player or the players in range), `give`, `execute if entity`. Anything else, and
    every command whose name is in `missing` (a server where a plugin removed it), gets vanilla's parse error.
    `rejected` maps a command name to the error reply every such command gets (e.g. "No entity was found")."""

    players: dict[str, Player] = field(default_factory=dict)
    entities: list[Entity] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    shown: list[tuple[list[str], Any]] = field(default_factory=list)  # tellraw: (who saw it, the component)
    given: list[tuple[str, str, int]] = field(default_factory=list)

    def __call__(self, command: str) -> str:
        words = set(re.findall(r"(?:^| run )(\w+)", command))
        if words & self.missing:
            return unknown_command(command)
        for name, reply in self.rejected.items():
            if name in words:
                return reply
        return self._answer(command)

    def _answer(self, command: str) -> str:
        if command == "list":
            return f"There are {len(self.players)} of a max of 20 players online: {', '.join(self.players)}"
        if get := _DATA_GET.fullmatch(command):
            player = self.players.get(get["name"])
            return "No entity was found" if player is None else self._entity_data(get["name"], player, get["path"])
        if get_all := _DATA_GET_ALL.fullmatch(command):
            return "".join(self._entity_data(name, p, get_all["path"]) for name, p in self.players.items())
        if _DATA_GET_PROBE.fullmatch(command):
            return "No entity was found"
        if probe := _IF_ENTITY.fullmatch(command):
            if probe["run"] is not None:
                return "" if probe["run"].split()[0] not in self.missing else unknown_command(command)
            return "Test passed" if self.tagged(probe["tag"]) else "Test failed"
        if summon := _SUMMON.fullmatch(command):
            self.entities.append(
                Entity(summon["entity"], summon["x"], summon["y"], summon["z"], summon["dim"], summon["nbt"])
            )
            return f"Summoned new {summon['entity'].removeprefix('minecraft:').title()}"
        if kill := _KILL.fullmatch(command):
            killed = self.tagged(kill["tag"])
            self.entities = [entity for entity in self.entities if entity not in killed]
            if not killed:
                return "No entity was found"
            return f"Killed {killed[0].name}" if len(killed) == 1 else f"Killed {len(killed)} entities"
        if face := _FACE.fullmatch(command):
            body = self.tagged(face["tag"])
            return f"Teleported {body[0].name} to {body[0].x}, {body[0].y}, {body[0].z}" if body else ""
        if tp := _TP.fullmatch(command):
            return self._teleport(tp)
        if tellraw := _TELLRAW.fullmatch(command):
            return self._tellraw(tellraw)
        if give := _GIVE.fullmatch(command):
            if give["player"] not in self.players:
                return "No player was found"
            self.given.append((give["player"], give["item"], int(give["count"])))
            return f"Gave {give['count']} [{give['item']}] to {give['player']}"
        return unknown_command(command)

    def tagged(self, tag: str) -> list[Entity]:
        return [entity for entity in self.entities if tag in entity.tags]

    def _teleport(self, tp: re.Match[str]) -> str:
        body = self.tagged(tp["tag"])
        if not body:
            return "No entity was found"
        entity = body[0]
        entity.x, entity.y, entity.z = tp["x"], tp["y"], tp["z"]
        if tp["dim"]:
            entity.dimension = tp["dim"]
        return f"Teleported {entity.name} to {float(tp['x']):f}, {float(tp['y']):f}, {float(tp['z']):f}"

    def _tellraw(self, tellraw: re.Match[str]) -> str:
        target, dimension = tellraw["target"], tellraw["dim"] or "minecraft:overworld"
        try:
            component = json.loads(tellraw["json"])
        except json.JSONDecodeError:
            return f"Invalid chat component: {tellraw['json'][:20]}...{tellraw['json'][:40]}<--[HERE]"
        if near := _NEAR.fullmatch(target):
            centre = (float(near["x"]), float(near["y"]), float(near["z"]))
            seen = [
                name
                for name, p in self.players.items()
                if p.dimension == dimension and math.dist(centre, (p.x, p.y, p.z)) <= float(near["r"])
            ]
        else:
            seen = [target] if target in self.players else []
        if not seen:
            return "No player was found"
        self.shown.append((seen, component))
        return ""

    def _entity_data(self, name: str, player: Player, path: str) -> str:
        value = {
            "Pos": f"[{player.x}d, {player.y}d, {player.z}d]",
            "Rotation": f"[{player.yaw}f, 0.0f]",
            "Dimension": json.dumps(player.dimension),
        }[path]
        return f"{player.team_prefix}{name} has the following entity data: {value}"
