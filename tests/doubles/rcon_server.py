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
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from integrations.minecraft.rcon_packets import encode_packet

CommandHandler = Callable[[str], str | Awaitable[str]]

_READ_SIZE = 1460
_SPLIT = 4096


def _unknown_command(command: str) -> str:
    return f"Unknown or incomplete command, see below for error{command}<--[HERE]"


class RconTestServer:
    def __init__(self, password: str, handler: CommandHandler = _unknown_command) -> None:
        self.password = password
        self.handler = handler
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


@dataclass
class Player:
    x: float
    y: float
    z: float
    yaw: float = 0.0
    dimension: str = "minecraft:overworld"


@dataclass
class MinecraftWorld:
    """A command handler that answers like a vanilla server for the commands the host sends: `list`,
    `data get entity`, `summon` and `kill` of tagged entities (kept, to count duplicates); others get a bland reply."""

    players: dict[str, Player] = field(default_factory=dict)
    entities: list[Entity] = field(default_factory=list)

    def __call__(self, command: str) -> str:
        if command == "list":
            return f"There are {len(self.players)} of a max of 20 players online: {', '.join(self.players)}"
        if get := _DATA_GET.fullmatch(command):
            return self._data_get(get["name"], get["path"])
        if summon := _SUMMON.fullmatch(command):
            self.entities.append(
                Entity(summon["entity"], summon["x"], summon["y"], summon["z"], summon["dim"], summon["nbt"])
            )
            return "Summoned new entity"
        if kill := _KILL.fullmatch(command):
            before = len(self.entities)
            self.entities = [entity for entity in self.entities if kill["tag"] not in entity.tags]
            killed = before - len(self.entities)
            return f"Killed {killed} entities" if killed else "No entity was found"
        return ""

    def tagged(self, tag: str) -> list[Entity]:
        return [entity for entity in self.entities if tag in entity.tags]

    def _data_get(self, name: str, path: str) -> str:
        player = self.players.get(name)
        if player is None:
            return "No entity was found"
        value = {
            "Pos": f"[{player.x}d, {player.y}d, {player.z}d]",
            "Rotation": f"[{player.yaw}f, 0.0f]",
            "Dimension": json.dumps(player.dimension),
        }[path]
        return f"{name} has the following entity data: {value}"
