"""Parse server log lines into chat, join and leave events, for every common server flavour.

    vanilla       [12:00:01] [Server thread/INFO]: <Alice> hi
    1.19+ chat    [12:00:01] [Server thread/INFO]: [Not Secure] <Alice> hi
    Paper/Spigot  [12:00:01 INFO]: <Alice> hi
    Spigot async  [12:00:01] [Async Chat Thread - #0/INFO]: <Alice> hi
    Forge         [12:00:01] [Server thread/INFO] [minecraft/MinecraftServer]: <Alice> hi
    NeoForge      [25Nov2026 12:00:01.123] [Server thread/INFO] [net.minecraft.server.MinecraftServer/]: <Alice> hi
    Fabric        [12:00:01] [Server thread/INFO] (Minecraft) <Alice> hi

Only INFO lines count, and the speaker must be a valid player name inside `<>`, so a chat message can never pass for
a join line or for another player's chat (player names cannot hold `<`, `>` or spaces).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HEADER = re.compile(
    r"^\[(?:\d{1,2}[A-Za-z]{3}\d{4} )?(?P<time>\d{2}:\d{2}:\d{2})(?:[.,]\d+)?(?P<paper> INFO)?\]"
    r"(?(paper)|(?: \[[^\]]*/INFO\]))"
    r"(?: \[[^\]]*\]| \([^)]*\))?"
    r":? "
)
_NAME = r"[A-Za-z0-9_]{3,16}"
_CHAT = re.compile(rf"^(?:\[Not Secure\] )?<(?P<player>{_NAME})> (?P<text>.*)$")
_JOIN_LEAVE = re.compile(rf"^(?P<player>{_NAME})(?: \(formerly known as {_NAME}\))? (?P<what>joined|left) the game$")


class _LogEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: str
    player: str


class ChatLine(_LogEvent):
    kind: Literal["chat"] = "chat"
    text: str


class PlayerJoined(_LogEvent):
    kind: Literal["joined"] = "joined"


class PlayerLeft(_LogEvent):
    kind: Literal["left"] = "left"


LogEvent = ChatLine | PlayerJoined | PlayerLeft


def strip_ansi(line: str) -> str:
    return _ANSI.sub("", line)


def parse_log_line(line: str) -> LogEvent | None:
    """The event a log line records, or None for every other line."""
    line = strip_ansi(line).rstrip("\r\n")
    header = _HEADER.match(line)
    if header is None:
        return None
    message = line[header.end() :]
    time = header["time"]
    if chat := _CHAT.match(message):
        return ChatLine(time=time, player=chat["player"], text=chat["text"])
    if event := _JOIN_LEAVE.match(message):
        if event["what"] == "joined":
            return PlayerJoined(time=time, player=event["player"])
        return PlayerLeft(time=time, player=event["player"])
    return None
