"""Bridge protocol v1 codec: frame round trips, malformed frames and messages, and tokens that never leak."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proximity_audio.protocol import (
    HEADER,
    MAGIC,
    MONO_BYTES,
    STEREO_BYTES,
    ErrorCode,
    Frame,
    FrameKind,
    Hello,
    Positions,
    ProtocolError,
    decode_frame,
    encode_frame,
    encode_hello,
    iter_frames,
    parse_client_message,
)


def pcm(n_bytes: int) -> bytes:
    return np.arange(n_bytes // 2, dtype="<i2").tobytes()


@pytest.mark.parametrize(
    ("kind", "size"),
    [(FrameKind.MICROPHONE, MONO_BYTES), (FrameKind.NPC_SOURCE, MONO_BYTES), (FrameKind.MIXED, STEREO_BYTES)],
)
def test_frame_round_trip(kind: FrameKind, size: int) -> None:
    payload = pcm(size)
    data = encode_frame(kind, 513, 2**32 + 7, payload)
    assert len(data) == 8 + size
    assert data[:8] == bytes([0xB1, kind, 0x01, 0x02, 0x07, 0, 0, 0])  # little-endian index 513, sequence wrapped to 7
    assert decode_frame(data) == Frame(kind, 513, 7, payload)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xb1\x01", "shorter than the 8-byte header"),
        (HEADER.pack(0x42, 1, 0, 0) + pcm(MONO_BYTES), "expected 0xB1"),
        (HEADER.pack(MAGIC, 9, 0, 0) + pcm(MONO_BYTES), "unknown frame kind 9"),
        (HEADER.pack(MAGIC, 1, 0, 0) + pcm(MONO_BYTES - 2), "expected 1928"),
        (HEADER.pack(MAGIC, 3, 0, 0) + pcm(MONO_BYTES), "expected 3848"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(data: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle) as caught:
        decode_frame(data)
    assert caught.value.code == ErrorCode.BAD_FRAME


def test_encode_refuses_a_payload_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="1920 bytes"):
        encode_frame(FrameKind.MICROPHONE, 0, 0, b"\x00" * 10)


def test_valid_messages_parse_into_models() -> None:
    message = parse_client_message(
        '{"type": "positions", "players": [{"index": 3, "x": 1, "y": 64, "z": -2.5, "yaw": 90}]}'
    )
    assert isinstance(message, Positions)
    assert message.players[0].yaw == 90 and message.players[0].dimension == "minecraft:overworld"


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        ("not json", ErrorCode.BAD_MESSAGE, "not valid JSON"),
        ("[1, 2]", ErrorCode.BAD_MESSAGE, "JSON object with a string field 'type'"),
        ('{"type": "teleport"}', ErrorCode.UNKNOWN_TYPE, "unknown message type 'teleport'"),
        ('{"type": "player_join", "index": 70000, "player": "A"}', ErrorCode.BAD_MESSAGE, "index"),
        ('{"type": "player_leave"}', ErrorCode.BAD_MESSAGE, "index: Field required"),
        ('{"type": "ping", "nonce": 1, "extra": true}', ErrorCode.BAD_MESSAGE, "extra"),
        ("[" * 100_000, ErrorCode.BAD_MESSAGE, "JSON"),
        (
            '{"type": "positions", "players": [{"index": 0, "x": NaN, "y": 64, "z": 0}]}',
            ErrorCode.BAD_MESSAGE,
            "players.0.x: Input should be a finite",
        ),
        (
            '{"type": "player_join", "index": 0, "player": "A", "position": {"x": 0, "y": 0, "z": 0, "yaw": Infinity}}',
            ErrorCode.BAD_MESSAGE,
            "position.yaw: Input should be a finite number",
        ),
    ],
)
def test_bad_messages_name_the_problem(text: str, code: str, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle) as caught:
        parse_client_message(text)
    assert caught.value.code == code


def test_hello_token_goes_on_the_wire_but_never_into_errors() -> None:
    hello = Hello(protocol_versions=[1], server="survival", token="s3cret-token", mode="source")
    wire = json.loads(encode_hello(hello))
    assert wire["token"] == "s3cret-token"
    assert "s3cret" not in repr(hello)
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(json.dumps({**wire, "mode": "surround"}))
    assert "s3cret" not in caught.value.message
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(json.dumps({**wire, "token": ["s3cret-token"]}))
    assert "s3cret" not in caught.value.message


def test_a_message_may_carry_several_frames() -> None:
    frames = [Frame(FrameKind.MICROPHONE, i, 100 + i, pcm(MONO_BYTES)) for i in range(3)]
    frames.append(Frame(FrameKind.MIXED, 9, 1, pcm(STEREO_BYTES)))
    assert list(iter_frames(b"".join(f.encode() for f in frames))) == frames


def test_frames_before_a_bad_one_are_still_read() -> None:
    good = Frame(FrameKind.MICROPHONE, 1, 5, pcm(MONO_BYTES))
    data = good.encode() + good.encode()[:100]
    reader = iter_frames(data)
    assert next(reader) == good
    with pytest.raises(ProtocolError, match="at byte 1928"):
        next(reader)
    with pytest.raises(ProtocolError, match="empty"):
        list(iter_frames(b""))
