"""Bridge protocol v1: JSON control messages (WebSocket text) and binary audio frames (WebSocket binary).

The specification for plugin authors is docs/bridge-protocol.md; this module is its executable form. A binary
message holds one or more frames back to back; every frame is an 8-byte header followed by exactly one 20 ms frame
of 48 kHz 16-bit little-endian PCM:

    offset 0  u8   magic/version  0xB1 ("bridge", protocol 1)
    offset 1  u8   kind           1 microphone (plugin -> host, mono), 2 NPC source (host -> plugin, mono),
                                  3 mixed (host -> plugin, stereo interleaved L R)
    offset 2  u16  index          player index (kinds 1 and 3) or NPC index (kind 2), little-endian
    offset 4  u32  sequence       per stream, +1 per frame, wraps at 2^32, little-endian
    offset 8  PCM  960 samples (1920 bytes) mono, or 960 stereo sample pairs (3840 bytes)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from host.errors import NpcHostError
from proximity_audio.spatial import GainCurve

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAGIC = 0xB1
SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
FRAME_MS = 20
HEADER = struct.Struct("<BBHI")
MONO_BYTES = FRAME_SAMPLES * 2
STEREO_BYTES = FRAME_SAMPLES * 4
MAX_INDEX = 0xFFFF
SEQUENCE_MODULUS = 2**32

OutputMode = Literal["source", "mixed"]


class FrameKind(IntEnum):
    MICROPHONE = 1
    NPC_SOURCE = 2
    MIXED = 3


_PAYLOAD_BYTES = {FrameKind.MICROPHONE: MONO_BYTES, FrameKind.NPC_SOURCE: MONO_BYTES, FrameKind.MIXED: STEREO_BYTES}


class ErrorCode:
    """`code` values of `error` messages; the connection stays open after each of them."""

    BAD_MESSAGE = "bad_message"  # not JSON, or a known type with missing/invalid fields
    UNKNOWN_TYPE = "unknown_type"
    BAD_FRAME = "bad_frame"  # wrong magic/version, unknown kind, wrong length
    UNKNOWN_PLAYER = "unknown_player"  # a frame or leave for an index that has not joined
    TOO_MANY_PLAYERS = "too_many_players"
    RATE_LIMITED = "rate_limited"  # microphone frames beyond the per-player rate are dropped
    UNKNOWN_NPC = "unknown_npc"
    TRY_AGAIN_LATER = "try_again_later"  # a new player refused while the host is short of memory; join again later
    NOT_HEARD = "not_heard"  # this host has no speech recognition installed: microphone frames are dropped


class CloseCode:
    """WebSocket close codes the host uses (4000-4999 are the application's own)."""

    BAD_TOKEN = 4001
    UNSUPPORTED_VERSION = 4002
    HELLO_EXPECTED = 4003  # the first message was not a valid hello, or it did not come in time
    REPLACED = 4009  # a voice page: the same player opened a newer session
    TOO_MANY_SESSIONS = 4029  # a voice page: the server has max_players voice pages open
    IDLE = 4008  # nothing received for the idle timeout
    TRY_AGAIN_LATER = 1013  # RFC 6455; the bridge has as many plugin connections as it takes, or is short of memory
    MESSAGE_TOO_BIG = 1009  # RFC 6455; a message over the size limit (sent by the WebSocket layer)
    KEEPALIVE_TIMEOUT = 1011  # a ping went unanswered (sent by the WebSocket layer)


class ProtocolError(NpcHostError):
    """A message or frame the host cannot accept; `code` is an `ErrorCode` value sent back to the plugin."""

    code = ErrorCode.BAD_MESSAGE


# --- control messages --------------------------------------------------------------------------------------------


class _Message(BaseModel):
    # Python's JSON reader takes NaN and Infinity: a NaN coordinate or yaw would make the mixer's gains NaN (noise).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class WirePosition(_Message):
    x: float
    y: float
    z: float
    yaw: float = 0.0
    dimension: str = Field("minecraft:overworld", min_length=1, max_length=128)


class Hello(_Message):
    type: Literal["hello"] = "hello"
    protocol_versions: list[int] = Field(min_length=1, max_length=16)
    server: str = Field(min_length=1, max_length=128)
    token: SecretStr
    mode: OutputMode = "mixed"
    plugin: str = Field("", max_length=128, description="the plugin's name and version, for logs")


class PlayerJoin(_Message):
    type: Literal["player_join"] = "player_join"
    index: int = Field(ge=0, le=MAX_INDEX)
    player: str = Field(min_length=1, max_length=64)
    position: WirePosition | None = None


class PlayerLeave(_Message):
    type: Literal["player_leave"] = "player_leave"
    index: int = Field(ge=0, le=MAX_INDEX)


class PlayerPosition(WirePosition):
    index: int = Field(ge=0, le=MAX_INDEX)


class Positions(_Message):
    type: Literal["positions"] = "positions"
    players: list[PlayerPosition] = Field(max_length=1024)


class NpcStop(_Message):
    type: Literal["npc_stop"] = "npc_stop"
    npc: str = Field(min_length=1, max_length=128)


_NONCE = Field(0, ge=-(2**63), lt=2**64, description="echoed in the pong; a 64-bit integer")


class Ping(_Message):
    type: Literal["ping"] = "ping"
    nonce: int = _NONCE


ClientMessage = Annotated[Hello | PlayerJoin | PlayerLeave | Positions | NpcStop | Ping, Field(discriminator="type")]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
CLIENT_TYPES = ("hello", "player_join", "player_leave", "positions", "npc_stop", "ping")


class AudioFormatInfo(_Message):
    sample_rate: int = SAMPLE_RATE
    channels: int = 1
    sample_format: Literal["s16le"] = "s16le"
    frame_samples: int = FRAME_SAMPLES


class LimitsInfo(_Message):
    max_message_bytes: int
    max_frames_per_second: int
    max_players: int
    idle_timeout_s: float


class NpcInfo(_Message):
    npc: str
    npc_index: int
    position: WirePosition
    speaking_range: float
    curve: GainCurve


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    protocol_version: int = PROTOCOL_VERSION
    mode: OutputMode
    audio: AudioFormatInfo = AudioFormatInfo()
    limits: LimitsInfo
    npcs: list[NpcInfo] = []


class NpcStreamStart(NpcInfo):
    type: Literal["npc_stream_start"] = "npc_stream_start"


class NpcStreamEnd(_Message):
    type: Literal["npc_stream_end"] = "npc_stream_end"
    npc: str
    npc_index: int
    reason: Literal["finished", "stopped"]


class ErrorMessage(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


class Pong(_Message):
    type: Literal["pong"] = "pong"
    nonce: int = 0


ServerMessage = Annotated[Welcome | NpcStreamStart | NpcStreamEnd | ErrorMessage | Pong, Field(discriminator="type")]
_server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def decode_typed_message(text: str) -> dict[str, Any]:
    """A text message as a JSON object with a string `type`; raises ProtocolError (bad_message) for anything else.
    Shared by the plugin and the voice-page profiles, so both refuse bad JSON the same way and keep the connection."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit: not a JSONDecodeError, still bad input
        raise ProtocolError(f"not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string field 'type'")
    return data


def describe_invalid(kind: str, exc: ValidationError) -> ProtocolError:
    """The error for a message that failed validation; pydantic's errors may echo input, so never a token or invite."""
    return ProtocolError(f"invalid {kind} message: {_describe(exc)}")


def parse_client_message(text: str) -> ClientMessage:
    """Validate a plugin's text message; raises ProtocolError with code bad_message or unknown_type."""
    data = decode_typed_message(text)
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError(
            f"unknown message type {data['type'][:64]!r} (known: {', '.join(CLIENT_TYPES)})",
            code=ErrorCode.UNKNOWN_TYPE,
        )
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        raise describe_invalid(data["type"], exc) from None


def parse_server_message(text: str) -> ServerMessage:
    """For clients: validate a host message (raises pydantic's ValidationError or ValueError)."""
    return _server_adapter.validate_json(text)


def encode_message(message: BaseModel) -> str:
    return message.model_dump_json()


def encode_hello(hello: Hello) -> str:
    """The hello with its token in clear, as it must go on the wire (model_dump masks secrets)."""
    data = hello.model_dump(mode="json")
    data["token"] = hello.token.get_secret_value()
    return json.dumps(data)


# --- binary frames -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    kind: FrameKind
    index: int
    sequence: int
    pcm: bytes

    def encode(self) -> bytes:
        return encode_frame(self.kind, self.index, self.sequence, self.pcm)


def encode_frame(kind: FrameKind, index: int, sequence: int, pcm: bytes) -> bytes:
    if len(pcm) != _PAYLOAD_BYTES[kind]:
        raise ValueError(f"a {kind.name} frame carries {_PAYLOAD_BYTES[kind]} bytes of PCM, got {len(pcm)}")
    return HEADER.pack(MAGIC, kind, index, sequence % SEQUENCE_MODULUS) + pcm


def decode_frame(data: bytes) -> Frame:
    """Parse a binary message holding exactly one frame; raises ProtocolError(bad_frame) naming what is wrong."""
    frame, end = _decode_at(memoryview(data), 0)
    if end != len(data):
        raise ProtocolError(
            f"{frame.kind.name} frame is {len(data)} bytes, expected {end} (8-byte header + {FRAME_SAMPLES} samples)",
            code=ErrorCode.BAD_FRAME,
        )
    return frame


def iter_frames(data: bytes) -> Iterator[Frame]:
    """The frames of a binary message, back to back; raises ProtocolError(bad_frame) at the first bad one, after
    yielding the good ones before it (what follows a bad header cannot be located)."""
    if not data:
        raise ProtocolError("empty binary message", code=ErrorCode.BAD_FRAME)
    view, offset = memoryview(data), 0
    while offset < len(view):
        frame, offset = _decode_at(view, offset)
        yield frame


def _decode_at(view: memoryview, offset: int) -> tuple[Frame, int]:
    where = f" at byte {offset}" if offset else ""
    if len(view) - offset < HEADER.size:
        raise ProtocolError(
            f"frame{where} has {len(view) - offset} bytes, shorter than the {HEADER.size}-byte header",
            code=ErrorCode.BAD_FRAME,
        )
    magic, kind_value, index, sequence = HEADER.unpack_from(view, offset)
    if magic != MAGIC:
        raise ProtocolError(f"frame{where} starts with 0x{magic:02X}, expected 0x{MAGIC:02X}", code=ErrorCode.BAD_FRAME)
    try:
        kind = FrameKind(kind_value)
    except ValueError:
        raise ProtocolError(f"unknown frame kind {kind_value}{where}", code=ErrorCode.BAD_FRAME) from None
    end = offset + HEADER.size + _PAYLOAD_BYTES[kind]
    if end > len(view):
        raise ProtocolError(
            f"{kind.name} frame{where} is {len(view) - offset} bytes, expected {end - offset} "
            f"(8-byte header + {FRAME_SAMPLES} samples)",
            code=ErrorCode.BAD_FRAME,
        )
    return Frame(kind, index, sequence, bytes(view[offset + HEADER.size : end])), end
