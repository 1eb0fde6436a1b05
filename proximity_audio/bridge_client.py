"""Reference companion-plugin client: speaks bridge protocol v1 exactly as a game-side plugin would.

Used by `npc-host bridge-sim`, the tests and the bench. A real plugin does the same with its game's players:
hello -> welcome, player_join, positions every few ticks, microphone frames in real time, and it plays what
comes back (mixed stereo per player, or one mono source per NPC that it places itself).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from numpy.typing import NDArray
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from host.events import Position
from host.speech.audio import Int16Array, int16_to_pcm16, pcm16_to_int16
from proximity_audio.protocol import (
    FRAME_MS,
    FRAME_SAMPLES,
    PROTOCOL_VERSION,
    Frame,
    FrameKind,
    Hello,
    NpcInfo,
    NpcStop,
    OutputMode,
    Ping,
    PlayerJoin,
    PlayerLeave,
    PlayerPosition,
    Positions,
    ServerMessage,
    Welcome,
    WirePosition,
    encode_frame,
    encode_hello,
    encode_message,
    iter_frames,
    parse_server_message,
)
from proximity_audio.spatial import stereo_gain


class BridgeRefusedError(Exception):
    """The host closed the connection during the handshake (bad token, unsupported version)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"bridge refused the connection ({code}: {reason})")
        self.code = code
        self.reason = reason


def wire_position(position: Position) -> WirePosition:
    return WirePosition(x=position.x, y=position.y, z=position.z, yaw=position.yaw, dimension=position.dimension)


class BridgeClient:
    def __init__(
        self,
        url: str,
        *,
        server: str,
        token: str,
        mode: OutputMode = "mixed",
        plugin: str = "npc-host bridge-sim",
        max_size: int = 2**20,
    ) -> None:
        self._url = url
        self._hello = Hello(
            protocol_versions=[PROTOCOL_VERSION], server=server, token=SecretStr(token), mode=mode, plugin=plugin
        )
        self._max_size = max_size
        self._ws: ClientConnection | None = None

    @property
    def ws(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("not connected")
        return self._ws

    async def connect(self) -> Welcome:
        """Connect and say hello; raises BridgeRefusedError when the host closes instead of welcoming."""
        self._ws = await connect(self._url, max_size=self._max_size, compression=None)
        await self._ws.send(encode_hello(self._hello))
        try:
            reply = await self._ws.recv()
        except ConnectionClosed as exc:
            closed = exc.rcvd
            raise BridgeRefusedError(closed.code if closed else None, closed.reason if closed else str(exc)) from None
        message = parse_server_message(reply if isinstance(reply, str) else reply.decode())
        if not isinstance(message, Welcome):
            raise BridgeRefusedError(None, f"expected welcome, got {message.type}")
        return message

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- sending -------------------------------------------------------------------------------------------------

    async def join(self, index: int, player: str, position: Position | None = None) -> None:
        where = wire_position(position) if position else None
        await self.ws.send(encode_message(PlayerJoin(index=index, player=player, position=where)))

    async def leave(self, index: int) -> None:
        await self.ws.send(encode_message(PlayerLeave(index=index)))

    async def move(self, positions: dict[int, Position]) -> None:
        entries = [PlayerPosition(index=i, **wire_position(p).model_dump()) for i, p in positions.items()]
        await self.ws.send(encode_message(Positions(players=entries)))

    async def stop_npc(self, npc: str) -> None:
        await self.ws.send(encode_message(NpcStop(npc=npc)))

    async def ping(self, nonce: int = 0) -> None:
        await self.ws.send(encode_message(Ping(nonce=nonce)))

    async def send_microphone(self, index: int, sequence: int, samples: Int16Array) -> None:
        await self.ws.send(encode_frame(FrameKind.MICROPHONE, index, sequence, int16_to_pcm16(samples)))

    async def send_microphones(self, frames: Sequence[tuple[int, int, Int16Array]]) -> None:
        """One tick of several players' frames, (index, sequence, samples) each, in one binary message."""
        await self.ws.send(
            b"".join(encode_frame(FrameKind.MICROPHONE, i, seq, int16_to_pcm16(pcm)) for i, seq, pcm in frames)
        )

    async def stream_microphone(self, index: int, samples: Int16Array, *, first_sequence: int = 0) -> int:
        """Send 48 kHz mono samples as 20 ms frames in real time (last frame zero-padded); returns the next sequence."""
        padded = np.zeros(-(-len(samples) // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
        padded[: len(samples)] = samples
        deadline = time.monotonic()
        sequence = first_sequence
        for start in range(0, len(padded), FRAME_SAMPLES):
            await self.send_microphone(index, sequence, padded[start : start + FRAME_SAMPLES])
            sequence += 1
            deadline += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        return sequence

    # --- receiving -----------------------------------------------------------------------------------------------

    async def receive(self) -> ServerMessage | list[Frame]:
        """The next message from the host: a control message, or the audio frames of one binary message."""
        data = await self.ws.recv()
        if isinstance(data, bytes):
            return list(iter_frames(data))
        return parse_server_message(data)

    async def collect(self, seconds: float) -> Received:
        """Everything that arrives within `seconds` (or until the host closes)."""
        return await self.collect_until(lambda _: False, within_s=seconds)

    async def collect_until(self, done: Callable[[Received], bool], *, within_s: float) -> Received:
        """What arrives until `done(received)` holds, `within_s` passes or the host closes."""
        received = Received()
        end = time.monotonic() + within_s
        while (left := end - time.monotonic()) > 0 and not done(received):
            try:
                async with asyncio.timeout(left):
                    item = await self.receive()
            except (TimeoutError, ConnectionClosed):
                break
            received.add(item, time.monotonic())
        return received


@dataclass
class Received:
    """What a client got: control messages in order, and audio frames with their arrival times."""

    messages: list[ServerMessage] = field(default_factory=list)
    frames: list[tuple[float, Frame]] = field(default_factory=list)

    def add(self, item: ServerMessage | list[Frame], arrival: float) -> None:
        if isinstance(item, list):
            self.frames.extend((arrival, frame) for frame in item)
        else:
            self.messages.append(item)

    def of_type(self, type_name: str) -> list[ServerMessage]:
        return [m for m in self.messages if m.type == type_name]

    def audio(self, kind: FrameKind, index: int) -> Int16Array:
        """The PCM of one stream's frames, in sequence order: (n,) mono or (n, 2) stereo."""
        frames = sorted((f for _, f in self.frames if f.kind is kind and f.index == index), key=lambda f: f.sequence)
        channels = 2 if kind is FrameKind.MIXED else 1
        if not frames:
            return np.zeros((0, channels) if channels == 2 else 0, dtype=np.int16)
        samples = pcm16_to_int16(b"".join(f.pcm for f in frames))
        return samples.reshape(-1, 2) if channels == 2 else samples


def place_heard_audio(
    frames: Sequence[tuple[float, Frame]],
    start: float,
    *,
    player_index: int,
    listener: Position,
    sources: dict[int, NpcInfo],
) -> Int16Array:
    """What one player hears as a stereo timeline from `start`: frames land in the 20 ms slot they arrived in.

    Mixed frames for the player are used as they are; NPC source frames are placed the way a plugin would,
    with the same gain and pan as the host's mixer (from each stream's `npc_stream_start`).
    """
    slots: dict[int, NDArray[np.float32]] = {}
    last_slot: dict[tuple[FrameKind, int], int] = {}
    for arrival, frame in frames:
        if frame.kind is FrameKind.MIXED and frame.index == player_index:
            stereo = pcm16_to_int16(frame.pcm).reshape(-1, 2).astype(np.float32)
        elif frame.kind is FrameKind.NPC_SOURCE and frame.index in sources:
            info = sources[frame.index]
            where = Position(**info.position.model_dump())
            gain = stereo_gain(listener, where, info.speaking_range, info.curve)
            mono = pcm16_to_int16(frame.pcm).astype(np.float32)
            stereo = np.stack((mono * gain.left, mono * gain.right), axis=1)
        else:
            continue
        key = (frame.kind, frame.index)
        slot = max(round((arrival - start) * 1000 / FRAME_MS), last_slot.get(key, -1) + 1)
        last_slot[key] = slot
        slots[slot] = slots.get(slot, 0) + stereo
    if not slots:
        return np.zeros((0, 2), dtype=np.int16)
    out = np.zeros(((max(slots) + 1) * FRAME_SAMPLES, 2), dtype=np.float32)
    for slot, stereo in slots.items():
        out[slot * FRAME_SAMPLES : (slot + 1) * FRAME_SAMPLES] = stereo
    timeline: Int16Array = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return timeline
