"""The RCON wire format as vanilla Minecraft speaks it (net.minecraft.server.rcon.thread.RconClient).

A packet is `<int32 length><int32 request id><int32 type><body bytes>\\0\\0`, little endian, where `length` counts
everything after itself. The server reads each request with a single `read()` of at most 1460 bytes and drops the
connection when the declared length does not match what that read returned, so a request must fit in 1460 bytes and
must never share a TCP segment with the next one. Replies are cut every 4096 characters with no end marker.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from enum import IntEnum

MAX_REQUEST_PACKET = 1460
HEADER_SIZE = 12  # length, request id, type
MAX_REQUEST_BODY = MAX_REQUEST_PACKET - HEADER_SIZE - 2
REPLY_SPLIT_CHARS = 4096
# Vanilla splits replies by UTF-16 characters and encodes them as UTF-8: at most 3 bytes each, plus id, type, NULs.
MAX_REPLY_PAYLOAD = REPLY_SPLIT_CHARS * 3 + 10
MIN_PAYLOAD = 10

_INT32 = struct.Struct("<i")
_HEADER = struct.Struct("<iii")


class PacketType(IntEnum):
    RESPONSE_VALUE = 0
    EXEC_COMMAND = 2
    AUTH_RESPONSE = 2
    AUTH = 3


class MalformedPacketError(ValueError):
    """The peer sent bytes that are not an RCON packet."""


@dataclass(frozen=True)
class Packet:
    request_id: int
    type: int
    body: str


def encode_packet(request_id: int, packet_type: int, body: str) -> bytes:
    data = body.encode("utf-8")
    return _HEADER.pack(len(data) + MIN_PAYLOAD, request_id, packet_type) + data + b"\x00\x00"


def request_body_size(body: str) -> int:
    return len(body.encode("utf-8"))


async def read_packet(reader: asyncio.StreamReader, max_payload: int = MAX_REPLY_PAYLOAD) -> Packet:
    """Read one packet, refusing a declared length outside [10, max_payload] before reading the payload."""
    (length,) = _INT32.unpack(await reader.readexactly(_INT32.size))
    if not MIN_PAYLOAD <= length <= max_payload:
        raise MalformedPacketError(f"packet length {length} outside 10..{max_payload}")
    payload = await reader.readexactly(length)
    request_id, packet_type = struct.unpack_from("<ii", payload)
    if payload[-2:] != b"\x00\x00":
        raise MalformedPacketError("packet does not end with two NUL bytes")
    # Vanilla may cut a surrogate pair at the 4096-character boundary; Java encodes the lone half as '?'.
    return Packet(request_id, packet_type, payload[8:-2].decode("utf-8", errors="replace"))
