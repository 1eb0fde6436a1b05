"""The browser profile of bridge protocol v1 (docs/bridge-protocol.md, section 10): one player per connection.

A voice page connects to `/voice` on the bridge's port and sends `browser_hello` with a one-time invite instead of a
server token. The invite decides who the connection is: its one player has index 0, joins by itself, and never sends
`player_join`, `player_leave` or `positions` (the player's position comes from the game, or from a table's game
master). Audio frames are exactly those of the plugin protocol: kind 1 microphone frames with index 0 up, kind 3
mixed frames with index 0 down.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, TypeAdapter, ValidationError

from proximity_audio.protocol import (
    PROTOCOL_VERSION,
    AudioFormatInfo,
    ErrorCode,
    LimitsInfo,
    NpcInfo,
    Ping,
    ProtocolError,
    _Message,
    decode_typed_message,
    describe_invalid,
)

VOICE_PATH = "/voice/ws"
BROWSER_INDEX = 0  # the one player of a browser connection
MAX_CHAT_CHARS = 256  # as long as a Minecraft chat message


class SessionRefusedError(Exception):
    """An invite that does not open a session; the message is shown to the player (it never holds the token)."""


class BrowserHello(_Message):
    type: Literal["browser_hello"] = "browser_hello"
    protocol_versions: list[int] = Field(min_length=1, max_length=16)
    invite: SecretStr = Field(max_length=512)


class Chat(_Message):
    """A line typed on the page, for players without a microphone: said where the player stands in the game."""

    type: Literal["chat"] = "chat"
    text: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)


# No npc_stop: a page's player stops an NPC answering them by speaking (barge-in); stopping NPCs that talk to others
# is the game's or an operator's call.
BrowserMessage = Annotated[BrowserHello | Chat | Ping, Field(discriminator="type")]
_browser_adapter: TypeAdapter[BrowserMessage] = TypeAdapter(BrowserMessage)
BROWSER_TYPES = ("browser_hello", "chat", "ping")


class BrowserWelcome(_Message):
    type: Literal["browser_welcome"] = "browser_welcome"
    protocol_version: int = PROTOCOL_VERSION
    server: str
    player: str
    audio: AudioFormatInfo = AudioFormatInfo()
    limits: LimitsInfo
    npcs: list[NpcInfo] = Field(default_factory=list)
    npc_names: dict[str, str] = Field(default_factory=dict, description="NPC id -> the name players know it by")


class Earshot(_Message):
    """Sent when it changes: whether the game has told the host where the player is, and which NPCs hear them."""

    type: Literal["earshot"] = "earshot"
    position_known: bool
    npcs: list[str]


class Line(_Message):
    """A transcript line for the page: what the player was heard saying, and what NPCs within earshot said."""

    type: Literal["line"] = "line"
    speaker: str
    text: str
    source: Literal["voice", "chat", "npc"]


def parse_browser_message(text: str) -> BrowserMessage:
    """Validate a page's text message; raises ProtocolError with code bad_message or unknown_type."""
    data = decode_typed_message(text)
    if data["type"] not in BROWSER_TYPES:
        raise ProtocolError(
            f"a voice page may send {', '.join(BROWSER_TYPES)}, not {data['type'][:64]!r}",
            code=ErrorCode.UNKNOWN_TYPE,
        )
    try:
        return _browser_adapter.validate_python(data)
    except ValidationError as exc:
        raise describe_invalid(data["type"], exc) from None
