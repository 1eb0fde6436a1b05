"""A voice scene on the path a player meets: the real roles (brain, speech, and the gateway's voice bridge) on the
in-process hub, and recorded players who talk to them through the reference companion plugin (`BridgeClient`) over
a WebSocket on 127.0.0.1. `npc-host demo` and `bench voice` run it; `npc-host run` runs the same roles.

A player's recording is sent in real time as 20 ms microphone frames, and then nothing, as the bridge protocol allows
a plugin to do while its player is silent. What comes back is what the plugin receives: each NPC's mono source
stream. The scene reads the hub too (group "scene"), for what the host heard and the milestones of each turn:

    origin          the player's last sample (the last frame sent); for an utterance that ended earlier in the same
                    recording, the end of speech as the bridge's VAD dated it
    endpoint        the bridge published the utterance (the VAD's end silence is over)
    transcript      the speech role published the `PlayerSaid`
    first token     the brain's first token (its turn start + the turn's `first_token` time)
    first sentence  the brain published the first sentence
    first chunk     the speech role published the first audio of it
    first audio     the first frame of the reply reached the plugin (the first to arrive after the bridge stamped
                    the turn's first frame leaving; the frames up to the next turn's stamp are the reply's audio)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field

import numpy as np

from host.bus.streams import StreamKind, consumer_name, stream_for, stream_name
from host.events import (
    Event,
    NpcAudio,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerSaid,
    PlayerUtterance,
    Position,
)
from host.roles.brain import BrainRole
from host.roles.gateway import GatewayRole
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.roles.speech import SpeechRole
from host.speech.audio import Int16Array, pcm16_to_int16
from host.voice.timings import VoiceTimings
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.hearing import BridgeStats
from proximity_audio.protocol import Frame, FrameKind, NpcStreamEnd, NpcStreamStart, ServerMessage

GROUP = "scene"
TOKEN = "npc-host-voice-scene"
QUIET_S = 0.5  # a moment is over when nothing has happened this long and every role is idle (see `_settle`)
MOMENT_LIMIT_S = 180.0  # a bound for a loaded 2-core machine, never a speed check
KEEPALIVE_S = 15.0  # the bridge closes connections that send nothing for a minute
WATCHED = (StreamKind.UTTERANCES, StreamKind.SAID, StreamKind.TURNS, StreamKind.AUDIO, StreamKind.CONTROL)


class SceneError(Exception):
    """The scene could not be played (a role failed, or a moment never settled)."""


@dataclass
class SceneTurn:
    """One NPC's answer to one line, as the player heard it."""

    said: PlayerSaid
    npc: str
    turn_id: str
    reply: str  # what the players heard: the whole reply, or up to where a barge-in cut it
    interrupted: bool
    audio: Int16Array  # mono PCM16 at the bridge's 48 kHz, the frames of the NPC's stream in order
    timings: VoiceTimings
    timings_ms: dict[str, float]  # the brain's own (prompt, first token, first sentence, total, stt)


@dataclass
class _Heard:
    """Everything the scene saw, with when it saw it."""

    events: list[Event] = field(default_factory=list)
    last_event: float = 0.0
    frames: defaultdict[str, list[tuple[float, Frame]]] = field(default_factory=lambda: defaultdict(list))
    sounding: set[str] = field(default_factory=set)  # NPCs whose stream is open at the plugin
    npc_by_index: dict[int, str] = field(default_factory=dict)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class VoiceScene:
    """The roles of one process and one plugin connection (source mode) for the players of `server`. Use as
    `async with VoiceScene(services, server) as scene:` once `services.settings` names a free `bridge_port`, on a
    profile whose `[bridge]` token variable is `token_env` (the scene sets it for its own gateway only)."""

    def __init__(self, services: HostServices, server: str) -> None:
        spec = services.registry.server(server).bridge
        if spec is None:
            raise SceneError(f"server '{server}' has no [bridge] section: its players cannot talk")
        self.services = services
        self.server = server
        self.brain = BrainRole(services, make_brain(services))
        self.speech = SpeechRole(services)
        self.gateway = GatewayRole(services, adapters={}, environ={spec.token_env: TOKEN}, games=False)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._heard = _Heard()
        self._indexes: dict[str, int] = {}  # player -> their index on the plugin connection
        self._sequences: dict[str, int] = {}  # player -> their next microphone sequence number
        self._client: BridgeClient | None = None

    @property
    def bridge_stats(self) -> BridgeStats:
        return self.gateway.bridge.voices[self.server].bridge.stats

    async def __aenter__(self) -> VoiceScene:
        roles = (self.brain, self.speech, self.gateway)
        self._tasks = [asyncio.create_task(role.run(self._stop), name=f"scene-{role.name}") for role in roles]
        bus = self.services.bus
        for kind in WATCHED:
            stream = stream_name(self.server, kind)
            consume = bus.consume(stream, GROUP, consumer_name(GROUP), self._on_event, stop=self._stop)
            self._tasks.append(asyncio.create_task(consume, name=f"scene-watch-{kind}"))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def ready(self) -> None:
        """Wait for the models, the warm persona prefixes and the bridge, then connect the plugin."""
        await self._unless_a_role_fails(self.speech.loaded.wait())
        await self._unless_a_role_fails(self.brain.warmed.wait())
        settings = self.services.settings
        url = f"ws://{settings.bridge_host}:{settings.bridge_port}/bridge"
        client = BridgeClient(url, server=self.server, token=TOKEN, mode="source", plugin="npc-host voice scene")
        for _ in range(100):  # the gateway opens the bridge while the models load; it is normally up long before
            try:
                welcome = await client.connect()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise SceneError(f"the voice bridge never answered on {url}")
        self._client = client
        self._heard.npc_by_index = {npc.npc_index: npc.npc for npc in welcome.npcs}
        self._tasks.append(asyncio.create_task(self._receive(client), name="scene-plugin"))
        self._tasks.append(asyncio.create_task(self._keepalive(client), name="scene-keepalive"))

    async def say(self, player: str, position: Position, samples: Int16Array) -> list[SceneTurn]:
        """`player`, standing at `position`, says `samples` (mono, 48 kHz) into their microphone in real time and
        then sends nothing; returns the turns their speech caused, once every answer has been heard."""
        client = self._connected()
        index = await self._join(client, player, position)
        since = len(self._heard.events)
        sequence = self._sequences.get(player, 0)
        self._sequences[player] = await client.stream_microphone(index, samples, first_sequence=sequence)
        last_sample = time.time()
        end_silence_s = self.services.settings.vad.end_silence_ms / 1000
        await self._settle(not_before=last_sample + end_silence_s + QUIET_S)
        return self._turns(since, player, last_sample)

    async def type(self, player: str, position: Position, text: str) -> list[SceneTurn]:
        """`player`, standing at `position`, types `text` in chat; returns the turns it caused once every answer has
        been heard."""
        await self._join(self._connected(), player, position)  # the plugin plays the reply to its players only
        since = len(self._heard.events)
        said = PlayerSaid(server=self.server, player=player, text=text, source="chat", position=position)
        await self.services.bus.publish(stream_for(said), said)
        await self._settle(not_before=time.time())
        return self._turns(since, player, said.ts)

    # --- the plugin --------------------------------------------------------------------------------------------

    def _connected(self) -> BridgeClient:
        if self._client is None:
            raise SceneError("the scene is not ready: call ready() first")
        return self._client

    async def _join(self, client: BridgeClient, player: str, position: Position) -> int:
        index = self._indexes.setdefault(player, len(self._indexes))
        await client.join(index, player, position)
        return index

    async def _receive(self, client: BridgeClient) -> None:
        while not self._stop.is_set():
            try:
                item = await client.receive()
            except Exception:  # the connection closed: the scene is ending
                return
            self._on_plugin(item, time.time())

    def _on_plugin(self, item: ServerMessage | list[Frame], arrival: float) -> None:
        heard = self._heard
        if isinstance(item, list):
            for frame in item:
                npc = heard.npc_by_index.get(frame.index)
                if frame.kind is FrameKind.NPC_SOURCE and npc is not None:
                    heard.frames[npc].append((arrival, frame))
        elif isinstance(item, NpcStreamStart):
            heard.npc_by_index[item.npc_index] = item.npc
            heard.sounding.add(item.npc)
        elif isinstance(item, NpcStreamEnd):
            heard.sounding.discard(item.npc)
        heard.last_event = arrival

    async def _keepalive(self, client: BridgeClient) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(Exception):
                await client.ping()

    # --- the hub -----------------------------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        self._heard.events.append(event)
        self._heard.last_event = time.time()

    async def _settle(self, not_before: float) -> None:
        """Until the moment is over: not before `not_before` (the bridge may still be ending the utterance), every
        role has handled everything on the hub (no entry pending or undelivered in any group), no NPC is speaking,
        and nothing has happened for `QUIET_S`."""
        deadline = time.monotonic() + MOMENT_LIMIT_S
        bridge = self.gateway.bridge.voices[self.server].bridge
        while True:
            self._raise_if_a_role_failed()
            now = time.time()
            heard = self._heard
            if (
                now >= not_before
                and now - heard.last_event >= QUIET_S
                and not heard.sounding
                and not self.speech.speaking_turns
                and not bridge.sounding
                and await self._hub_idle()
            ):
                return
            if time.monotonic() > deadline:
                busy = ", ".join(await self._busy_groups()) or "none"
                raise SceneError(
                    f"the scene did not settle within {MOMENT_LIMIT_S:.0f} s (hub groups still busy: {busy}; NPCs "
                    f"sounding at the plugin: {', '.join(sorted(heard.sounding)) or 'none'})"
                )
            await asyncio.sleep(0.05)

    async def _hub_idle(self) -> bool:
        return not await self._busy_groups()

    async def _busy_groups(self) -> list[str]:
        busy = []
        for kind in StreamKind:
            info = await self.services.bus.stream_info(stream_name(self.server, kind))
            busy += [f"{kind}/{group.name}" for group in info.groups if group.pending or group.lag]
        return busy

    def _turns(self, since: int, player: str, last_sample: float) -> list[SceneTurn]:
        events = self._heard.events
        recent = events[since:]
        utterances = {e.id: e for e in recent if isinstance(e, PlayerUtterance)}
        turns: list[SceneTurn] = []
        for said in (e for e in recent if isinstance(e, PlayerSaid) and e.player == player):
            for started in (e for e in recent if isinstance(e, NpcTurnStarted) and e.cause_id == said.id):
                utterance = utterances.get(said.utterance_id or "")
                if (turn := self._turn(said, started, utterance, recent, last_sample)) is not None:
                    turns.append(turn)
        return turns

    def _turn(
        self,
        said: PlayerSaid,
        started: NpcTurnStarted,
        utterance: PlayerUtterance | None,
        recent: list[Event],
        last_sample: float,
    ) -> SceneTurn | None:
        """None for a turn cut before it wrote a word: the brain records no end for it, and there is nothing to show."""
        of_turn = [e for e in recent if getattr(e, "turn_id", None) == started.turn_id]
        ended = next((e for e in of_turn if isinstance(e, NpcTurnEnded)), None)
        if ended is None:
            return None
        cut = next((e for e in of_turn if isinstance(e, NpcTurnCut)), None)
        sentence = next((e for e in of_turn if isinstance(e, NpcSentence)), None)
        chunk = next((e for e in of_turn if isinstance(e, NpcAudio)), None)
        # The NPC's frames from the bridge's stamp of this turn's first frame to the next turn's are this turn's voice.
        voice = self.gateway.bridge.voices[self.server]
        opened = voice.first_audio_at(started.turn_id)
        later = [
            stamp
            for e in recent
            if isinstance(e, NpcTurnStarted) and e.npc == started.npc and e.turn_id != started.turn_id
            if (stamp := voice.first_audio_at(e.turn_id)) is not None and opened is not None and stamp > opened
        ]
        until = min(later, default=float("inf"))
        frames = [] if opened is None else [(t, f) for t, f in self._heard.frames[started.npc] if opened <= t < until]
        if utterance is None:
            timings = VoiceTimings(origin=said.ts, spoken=False, endpoint=said.ts, transcript=said.ts)
        else:
            ended_before_last_sample = utterance.speech_end_ts is not None and utterance.ts < last_sample
            origin = utterance.speech_end_ts if ended_before_last_sample and utterance.speech_end_ts else last_sample
            timings = VoiceTimings(
                origin=origin, spoken=True, endpoint=utterance.ts, transcript=said.ts, stt_decode_ms=said.stt_ms
            )
        if "first_token_after_speech" in ended.timings_ms and said.speech_end_ts is not None:
            # A speculative turn began before its NpcTurnStarted: its timings count from the end of the speech.
            timings.first_token = said.speech_end_ts + ended.timings_ms["first_token_after_speech"] / 1000.0
        elif "first_token" in ended.timings_ms:
            timings.first_token = started.ts + ended.timings_ms["first_token"] / 1000.0
        timings.first_sentence = sentence.ts if sentence is not None else None
        timings.first_chunk = chunk.ts if chunk is not None else None
        timings.first_audio = frames[0][0] if frames else None
        pcm = b"".join(frame.pcm for _, frame in sorted(frames, key=lambda item: item[1].sequence))
        return SceneTurn(
            said=said,
            npc=started.npc,
            turn_id=started.turn_id,
            reply=cut.heard if cut is not None else ended.reply,
            interrupted=ended.interrupted or cut is not None,
            audio=pcm16_to_int16(pcm) if pcm else np.zeros(0, dtype=np.int16),
            timings=timings,
            timings_ms=ended.timings_ms,
        )

    # --- the roles ---------------------------------------------------------------------------------------------

    async def _unless_a_role_fails(self, waiting: Awaitable[object]) -> None:
        waiter = asyncio.ensure_future(waiting)
        roles = self._tasks[:3]
        await asyncio.wait([waiter, *roles], return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            self._raise_if_a_role_failed()
            raise SceneError("a role stopped before the scene was ready")

    def _raise_if_a_role_failed(self) -> None:
        for task in self._tasks[:3]:
            if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                raise SceneError(f"{task.get_name()} failed: {error}") from error
