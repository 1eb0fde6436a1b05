"""The voice-mod bridge in the gateway role: one `/bridge` endpoint (`bridge_host:bridge_port`) for every server whose
profile has a `[bridge]` section, its plugins signing in with the token in the environment variable the section names
or with the one an admin set on the admin page (host/roles/bridge_tokens.py), and `/voice/ws` on
the same port for the players' voice pages of every server with an enabled `[voice_page]` (one-time invites,
host/invites.py).

Per server, between the bridge (proximity_audio) and the hub:
- microphones: an utterance within some NPC's hearing range -> `PlayerUtterance`, a pause in it -> `PlayerPaused`
  (speculative STT); a speech start -> `PlayerSpeechStarted`, and barge-in (decided here, and only here): every turn
  answering that player that began before and may still be written, synthesised or played is silenced at once,
  before the hub round trip, and announced as `NpcTurnCut`; the brain stops writing it and the speech role stops
  synthesising it on that cut. A turn announced after the speech start that began before it is cut on arrival;
- `audio`: `NpcAudio` -> paced out to the players within the NPC's speaking range; when a spoken line's answer has
  its first frame leave, the end-of-speech-to-first-audio time is observed (`npc_host_voice_stage_seconds`);
- `turns`: `NpcTurnStarted` says which player a turn answers; an interrupted `NpcTurnEnded` silences that turn;
- `control`: `PlayerSpeechStarted` (barge-in, as above) and `NpcControl` "stop" silence the NPC; "mute" silences it
  and keeps its voice off the bridge until "unmute" (its lines still reach chat);
- `positions`: players and NPCs move in the bridge's world. NPCs are placed from the profiles and follow reloads.
- `said` and `NpcSentence`: a voice page shows what its player was heard saying and what NPCs within earshot said;
  a line typed on a voice page is published as the player's `PlayerSaid` (chat). A `PlayerSaidTentative` (the
  speculative transcript of a pause) that sounds finished ends its utterance after the server's shorter silence
  (`[turn_taking] question_end_ms` / `sentence_end_ms`, host/speech/turn_taking.py).

A silenced turn stays silent: its chunks still on the way (TTS ran ahead of the barge-in) are dropped. A turn cut
while it sounded is announced as `NpcTurnCut` with the sentences the players heard to the end: the reply is written
long before it is heard, so only the bridge knows what was actually said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from host import metrics
from host.bus.delivery import Handler
from host.bus.streams import StreamKind, stream_for, stream_name
from host.errors import ConfigError, NpcHostError
from host.events import (
    Event,
    NpcAudio,
    NpcControl,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerLeft,
    PlayerSaid,
    PlayerSaidTentative,
    PlayerSpeechStarted,
    Positions,
)
from host.invites import InviteRedeemer, InviteRefusedError, InviteSigner, invite_secret, page_origin
from host.player_state import PlayerMemory
from host.profiles.schema import WorldSpec
from host.roles.bridge_tokens import StoredTokenCheck
from host.roles.services import HostServices
from host.speech.turn_taking import finished_wait_ms
from host.store import StoreError
from proximity_audio.bridge_listener import BridgeListener
from proximity_audio.bridge_server import BridgeServer
from proximity_audio.browser_protocol import Line, SessionRefusedError
from proximity_audio.world import SpatialWorld

log = logging.getLogger(__name__)

CONSUMED = (StreamKind.AUDIO, StreamKind.TURNS, StreamKind.CONTROL, StreamKind.POSITIONS, StreamKind.SAID)
REMEMBERED_TURNS = 1024
# Audio older than this is from before a restart (the hub keeps history): playing it now would answer nobody.
STALE_AUDIO_S = 60.0
# While no server has a plugin token (nor voice pages) the bridge stays closed and looks for one this often.
TOKEN_POLL_S = 5.0


@dataclass
class _Turn:
    npc: str
    player: str
    started: float
    speech_end_ts: float | None = None  # the player's end of speech, for a spoken line
    sounded: bool = False  # its first audio was queued
    first_audio: float | None = None  # when its first frame left for the players
    silenced: bool = False
    ended: bool = False  # the brain wrote all of it (its sentences are all in `sentences`)
    sentences: dict[int, str] = field(default_factory=dict)  # index -> text, to say what was heard if cut

    @property
    def began(self) -> float:
        """When the line it answers was over, on this side's clock when it was spoken (the brain's clock may differ),
        else when the brain began it."""
        return self.speech_end_ts if self.speech_end_ts is not None else self.started


class ServerVoice:
    """One server's bridge wired to the hub: who each turn answers, which turn each NPC is voicing."""

    def __init__(self, services: HostServices, server: str, token: str | None, *, plugins: bool) -> None:
        """`token`: the companion plugin's from the environment, if set. `plugins`: the server has a `[bridge]`, so
        plugins may also sign in with the token an admin set on the admin page; without it only voice pages bring
        players."""
        self.services = services
        self.server = server
        self.world = SpatialWorld()
        self.stored_token = StoredTokenCheck(services.store.bridge_tokens, server) if plugins else None
        self.bridge = BridgeServer(
            self.world,
            server=server,
            token=token,
            check_token=self.stored_token,
            on_utterance=self._publish,
            on_speech_started=self._on_speech_started,
            on_npc_stop=self._on_plugin_stop,
            on_chat=self._publish,
            limits=services.settings.bridge,
            on_speech_paused=self._publish,
            on_player_left=self._on_player_left,
            vad=services.settings.vad,
            on_audio_opened=self._on_audio_opened,
            npc_names=self._npc_names,
            memory=services.memory,
        )
        self._turns: OrderedDict[str, _Turn] = OrderedDict()
        self._voicing: dict[str, str] = {}  # NPC -> the turn whose audio it was last given
        self._muted: set[str] = set()  # NPCs an operator muted: read from the store at start, then from the hub
        self._spoke: PlayerMemory[str, float] = PlayerMemory()  # player -> when they last started speaking
        self._placed: dict[str, WorldSpec] = {}
        self.place_npcs()

    async def load_muted(self) -> None:
        """Take up the mutes the brain recorded (they outlast a restart of either role)."""
        try:
            self._muted |= await self.services.store.steering.muted_npcs(self.server)
        except StoreError as exc:
            log.warning(
                "server '%s': cannot read muted NPCs (they are heard until muted again): %s", self.server, exc.message
            )

    async def has_plugin_token(self, env_name: str, has_env_token: bool) -> bool:
        """Whether a plugin can connect now: a token in the environment or from the admin page. Said once at start
        when there is none."""
        if has_env_token or (self.stored_token is not None and await self.stored_token.read() is not None):
            return True
        # Not an error: a text-only server with a copied [bridge] section still works, and a token may come later.
        log.warning(
            "server '%s': voice is off until a bridge token is set (variable %s not set, none set on the admin page); "
            "chat works",
            self.server,
            env_name,
        )
        return False

    def place_npcs(self) -> None:
        """Place NPCs new or moved in the profiles; forget removed ones. Others keep where the game moved them."""
        npcs = self.services.registry.npcs(self.server)
        for gone in set(self._placed) - set(npcs):
            self.world.remove_npc(gone)
            del self._placed[gone]
        for npc_id, npc in npcs.items():
            if self._placed.get(npc_id) != npc.world:
                self.world.place_profile(npc)
                self._placed[npc_id] = npc.world

    async def on_event(self, event: Event) -> None:
        if isinstance(event, NpcAudio):
            self._play(event)
        elif isinstance(event, NpcTurnStarted):
            self._turns[event.turn_id] = _Turn(event.npc, event.player, event.ts, event.speech_end_ts)
            while len(self._turns) > REMEMBERED_TURNS:
                self._turns.popitem(last=False)
            spoke = self._spoke.get(event.player)
            if spoke is not None and spoke > self._turns[event.turn_id].began:  # announced late: they spoke since
                await self._announce(*self._barge_in(event.player, spoke))
        elif isinstance(event, NpcSentence):
            if (turn := self._turns.get(event.turn_id)) is not None:
                turn.sentences[event.index] = event.text
            self._show_npc_line(event)
        elif isinstance(event, PlayerSaid):
            self.bridge.tell(event.player, Line(speaker=event.player, text=event.text, source=event.source))
        elif isinstance(event, PlayerSaidTentative):
            self._end_finished_line(event)
        elif isinstance(event, NpcTurnEnded):
            if (turn := self._turns.get(event.turn_id)) is not None:
                turn.ended = True
            if event.interrupted:
                await self._announce(self._silence(event.turn_id))
        elif isinstance(event, PlayerSpeechStarted):
            await self._announce(*self._barge_in(event.player, event.ts))
        elif isinstance(event, NpcControl) and event.action in ("stop", "mute"):
            if event.action == "mute":
                self._muted.add(event.npc)
            await self._announce(self._silence_npc(event.npc))
        elif isinstance(event, NpcControl) and event.action == "unmute":
            self._muted.discard(event.npc)
        elif isinstance(event, Positions):
            self.world.apply(event)

    def _end_finished_line(self, tentative: PlayerSaidTentative) -> None:
        """The speculative transcript of a pause sounds finished: the utterance ends after the server's shorter
        silence (host/speech/turn_taking.py), unless the player has gone on since."""
        if tentative.speech_end_ts is None:
            return
        wait_ms = finished_wait_ms(tentative.text, self.services.registry.server(self.server).turn_taking)
        if wait_ms is not None:
            self.bridge.end_early(tentative.player, tentative.utterance_id, tentative.speech_end_ts, wait_ms)

    def _npc_names(self) -> dict[str, str]:
        return {npc_id: npc.name for npc_id, npc in self.services.registry.npcs(self.server).items()}

    def _show_npc_line(self, sentence: NpcSentence) -> None:
        """The NPC's words on the voice pages of the players within its speaking range."""
        npc = self.services.registry.npcs(self.server).get(sentence.npc)
        speaker = npc.name if npc is not None else sentence.npc
        for player in self.bridge.pages:
            if self.world.gain_for(player, sentence.npc) is not None:
                self.bridge.tell(player, Line(speaker=speaker, text=sentence.text, source="npc"))

    def _play(self, audio: NpcAudio) -> None:
        turn = self._turns.get(audio.turn_id)
        if (turn is not None and turn.silenced) or audio.ts < time.time() - STALE_AUDIO_S or audio.npc in self._muted:
            return
        self._voicing[audio.npc] = audio.turn_id
        opens_turn = turn is not None and not turn.sounded
        if turn is not None:
            turn.sounded = True
        self.bridge.play_event(audio, opens_turn=opens_turn)

    def _on_audio_opened(self, npc: str, turn_id: Hashable) -> None:
        """A turn's first frame left for the players: the latency a player notices ends here."""
        turn = self._turns.get(str(turn_id))
        if turn is None:
            return
        turn.first_audio = time.time()
        if turn.speech_end_ts is not None:
            metrics.observe_voice_stage(self.server, npc, "first_audio", turn.speech_end_ts, turn.first_audio)

    def first_audio_at(self, turn_id: str) -> float | None:
        """When the turn's first frame left for the players (None: not yet, or a turn long forgotten)."""
        turn = self._turns.get(turn_id)
        return turn.first_audio if turn is not None else None

    def _barge_in(self, player: str, since: float) -> list[NpcTurnCut | None]:
        """The one barge-in rule: every turn answering `player` that began before they started speaking (`since`)
        and may still be written, synthesised or played is silenced, and announced as cut with what was heard."""
        self._spoke[player] = max(self._spoke.get(player, 0.0), since)
        now = time.time()
        cuts: list[NpcTurnCut | None] = []
        for turn_id, turn in list(self._turns.items()):
            if turn.player != player or turn.began > since or not self._live(turn_id, turn, now):
                continue
            sounding, heard = self._stop_voice(turn_id)
            if not sounding and turn.ended and turn.sounded and len(heard) >= len(turn.sentences):
                continue  # it had been heard to the end
            log.info("barge-in: %s started speaking; %s stops", player, turn.npc)
            cuts.append(self._cut(turn_id, turn, heard))
        return cuts

    def _live(self, turn_id: str, turn: _Turn, now: float) -> bool:
        """The turn may still be written, synthesised or played (a muted NPC's turn is never heard: not cut)."""
        if turn.silenced or turn.npc in self._muted or now - turn.started > STALE_AUDIO_S:
            return False
        if not turn.ended or self._voicing.get(turn.npc) == turn_id:
            return True
        return not turn.sounded  # written, and none of its audio here yet; sounded and not voiced: the NPC moved on

    def _silence(self, turn_id: str) -> NpcTurnCut | None:
        """Drop the rest of a turn's audio. When its NPC was sounding or had it queued, what the players heard to
        the end, so the record can keep only that."""
        sounding, heard = self._stop_voice(turn_id)
        turn = self._turns.get(turn_id)
        return self._cut(turn_id, turn, heard) if sounding and turn is not None else None

    def _stop_voice(self, turn_id: str) -> tuple[bool, list[int]]:
        """Silence the turn: whether its NPC was sounding it or had it queued, and the sentences played to the end."""
        turn = self._turns.get(turn_id)
        if turn is not None:
            turn.silenced = True
        for npc, voiced in list(self._voicing.items()):
            if voiced == turn_id:
                del self._voicing[npc]
                heard = self.bridge.heard(npc, turn_id)
                return self.bridge.stop(npc), heard
        return False, []

    def _cut(self, turn_id: str, turn: _Turn, heard: list[int]) -> NpcTurnCut:
        return NpcTurnCut(
            server=self.server,
            npc=turn.npc,
            player=turn.player,
            turn_id=turn_id,
            heard=" ".join(turn.sentences[index] for index in heard if index in turn.sentences),
            sentences_heard=len(heard),
        )

    def _silence_npc(self, npc: str) -> NpcTurnCut | None:
        turn_id = self._voicing.get(npc)
        cut = self._silence(turn_id) if turn_id is not None else None
        self.bridge.stop(npc)
        return cut

    async def _announce(self, *cuts: NpcTurnCut | None) -> None:
        for cut in cuts:
            if cut is not None:
                await self._publish(cut)

    async def _publish(self, event: Event) -> None:
        await self.services.bus.publish(stream_for(event), event)

    async def _on_speech_started(self, event: PlayerSpeechStarted) -> None:
        cuts = self._barge_in(event.player, event.ts)
        await self._publish(event)
        await self._announce(*cuts)

    async def _on_player_left(self, player: str) -> None:
        self._spoke.forget(player)
        await self._publish(PlayerLeft(server=self.server, player=player))

    async def _on_plugin_stop(self, npc: str) -> None:
        await self._announce(self._silence_npc(npc))


class VoiceBridge:
    """The process's `/bridge` and `/voice` endpoint and every voiced server behind it."""

    def __init__(self, services: HostServices, environ: Mapping[str, str]) -> None:
        self.services = services
        self.voices: dict[str, ServerVoice] = {}
        self._env_tokens: dict[str, tuple[str, bool]] = {}  # server -> (its token variable, whether it is set)
        self._pages = False  # some server offers voice pages
        self._listening = False
        registry = services.registry
        origins = set()
        for server in registry.server_names():
            profile = registry.server(server)
            token = (environ.get(profile.bridge.token_env) or None) if profile.bridge is not None else None
            pages = profile.voice_page is not None and profile.voice_page.enabled
            if pages and profile.voice_page is not None:
                origins.add(page_origin(profile.voice_page.public_url))
                self._pages = True
            if profile.bridge is None and not pages:
                continue
            try:
                self.voices[server] = ServerVoice(services, server, token, plugins=profile.bridge is not None)
            except ConfigError as exc:
                log.error("server '%s' has no voice: %s", server, exc.message)
            if profile.bridge is not None:
                self._env_tokens[server] = (profile.bridge.token_env, token is not None)
        self._invites = InviteRedeemer(InviteSigner(invite_secret(services.settings.voice_page.invite_secret)))
        self.listener = BridgeListener(
            [voice.bridge for voice in self.voices.values()],
            services.settings.bridge,
            redeem=self._redeem,
            page_origins=origins,
        )

    def _redeem(self, token: str) -> tuple[str, str]:
        """The server and player an invite opens a voice page for, if that server offers voice pages now."""
        try:
            invite = self._invites.redeem(token)
        except InviteRefusedError as exc:
            raise SessionRefusedError(exc.message) from None
        registry = self.services.registry
        page = registry.server(invite.server).voice_page if invite.server in registry.server_names() else None
        if page is None or not page.enabled or invite.server not in self.voices:
            raise SessionRefusedError("voice in the browser is not enabled on this server")
        return invite.server, invite.player

    def handlers(self) -> dict[str, Handler]:
        """What the bridge reads through the gateway's group, by stream."""
        return {stream_name(server, kind): voice.on_event for server, voice in self.voices.items() for kind in CONSUMED}

    async def start(self) -> None:
        """Listen when some server can take a connection now: a plugin token (environment or admin page) or voice
        pages. Otherwise the port stays closed, and the VAD unloaded, until `open_on_first_token` sees a token."""
        if not self.voices:
            self.services.progress.done("bridge")  # no server profile has a [bridge]: nothing to listen for
            return
        ready = self._pages
        for server, voice in self.voices.items():
            await voice.load_muted()
            await voice.bridge.open()
            if server in self._env_tokens and await voice.has_plugin_token(*self._env_tokens[server]):
                ready = True
        if not ready:
            log.info("voice bridge: no server has a plugin token yet; the bridge opens when an admin sets one")
            self.services.progress.done("bridge")
            return
        try:
            await self._listen()
        except NpcHostError:
            await self.close()
            raise
        host, port = self._address()
        self.services.progress.listening("bridge", f"ws://{host}:{port}/bridge")

    async def open_on_first_token(self, stop: asyncio.Event) -> None:
        """While the bridge is closed, look every `TOKEN_POLL_S` for a token an admin set, and open it then: the first
        token of a host needs no restart either."""
        while self.voices and not self._listening and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TOKEN_POLL_S):
                    await stop.wait()
            if stop.is_set():
                return
            checks = [voice.stored_token for voice in self.voices.values() if voice.stored_token is not None]
            for check in checks:
                if await check.read() is not None:
                    # A port taken meanwhile fails the role as it would at start: never a gateway "running" deaf.
                    await self._listen()
                    host, port = self._address()
                    self.services.progress.listening("bridge", f"ws://{host}:{port}/bridge")
                    break

    async def _listen(self) -> None:
        settings = self.services.settings
        try:
            await self.listener.start(settings.bridge_host, settings.bridge_port)
        except OSError as exc:
            raise NpcHostError(
                f"the voice bridge cannot listen on {settings.bridge_host}:{settings.bridge_port} "
                f"(NPC_HOST_BRIDGE_HOST / NPC_HOST_BRIDGE_PORT): {exc.strerror or exc}",
                code="bridge_listen",
            ) from exc
        self._listening = True
        servers = ", ".join(f"'{server}'" for server in self.voices)
        log.info(
            "voice bridge listening on ws://%s:%d/bridge (voice pages: /voice/ws) for %s", *self._address(), servers
        )

    def refresh(self) -> None:
        """Profiles were reloaded: NPCs are placed again where their profiles changed."""
        for server, voice in self.voices.items():
            if server in self.services.registry.server_names():
                voice.place_npcs()

    async def close(self) -> None:
        self._listening = False
        await self.listener.close()
        for voice in self.voices.values():
            await voice.bridge.close()

    def _address(self) -> tuple[str, int]:
        return self.services.settings.bridge_host, self.listener.port
