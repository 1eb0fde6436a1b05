"""The brain role: answers `PlayerSaid` lines as the NPCs, and applies notes, corrections, pauses and barge-ins.
A `PlayerSaidTentative` starts the answer speculatively, held back until the same line comes as a `PlayerSaid`
(host/brain/speculation.py).

Streams (per server): `said` through the shared group "brain" one entry at a time, so N brain processes share the
turns and a dead one's entries are claimed by the others; `control` through the same group. A turn runs in its own
task so a barge-in (the bridge's `NpcTurnCut` of that turn) can stop it mid-sentence: the LLM stream closes, the
turn is recorded as interrupted with what was already said, then cut to what the players heard.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from host import metrics
from host.brain.engine import NpcBrain, StartedTurn
from host.brain.read_ahead import NextPromptReader
from host.brain.scripted import perform_say
from host.brain.turn import TurnSentence
from host.bus.streams import StreamKind, consumer_name, stream_for, stream_name
from host.errors import NotReadyError, NpcHostError
from host.events import (
    AdminCorrection,
    AdminNote,
    Event,
    NpcActed,
    NpcControl,
    NpcSentence,
    NpcTrial,
    NpcTrialReply,
    NpcTurnCut,
    NpcTurnStarted,
    PlayerLeft,
    PlayerSaid,
    PlayerSaidTentative,
    PlayerSpeechStarted,
    Positions,
)
from host.memory import NpcNote
from host.profiles.registry import UnknownNpcError
from host.profiles.schema import VoiceSpec
from host.roles.services import HostServices
from host.store import NewCorrection, NotFoundError
from host.transcript.from_events import (
    acted_line,
    admin_note_line,
    control_line,
    correction_line,
    turn_cut_line,
)
from host.transcript.watcher import NoteWatcher, watch_state_path
from host.voice.warmup import warm_personas

log = logging.getLogger(__name__)

GROUP = "brain"


# The per-NPC latency histogram's stages the brain sees, by their key in a turn's timings (the bridge observes the
# last one, first_audio, when the first frame leaves for the players).
_VOICE_STAGES = {
    "endpoint": "endpoint_after_speech",
    "stt": "transcript_after_speech",
    "first_token": "first_token_after_speech",
    "first_sentence": "first_sentence_after_speech",
}


class BrainRole:
    name = "brain"

    def __init__(self, services: HostServices, brain: NpcBrain) -> None:
        self.services = services
        self.brain = brain
        self.warmed = asyncio.Event()  # every server's persona prefixes were warmed (or could not be)
        self.read_ahead = NextPromptReader(brain)

    async def run(self, stop: asyncio.Event) -> None:
        bus = self.services.bus
        consumer = consumer_name(self.name)
        watchers: list[NoteWatcher] = []
        async with asyncio.TaskGroup() as tasks:
            for server in self.services.registry.server_names():
                said, control = stream_name(server, StreamKind.SAID), stream_name(server, StreamKind.CONTROL)
                positions = stream_name(server, StreamKind.POSITIONS)
                trials = stream_name(server, StreamKind.TRIALS)
                tasks.create_task(bus.consume(trials, GROUP, consumer, self.on_trial, batch=1, stop=stop))
                tasks.create_task(bus.consume(said, GROUP, consumer, self.on_said, batch=1, stop=stop))
                tasks.create_task(bus.consume(control, GROUP, consumer, self.on_control, stop=stop))
                tasks.create_task(bus.consume(positions, GROUP, consumer, self.on_positions, stop=stop))
                watcher = NoteWatcher(
                    self.services.settings.transcripts_dir,
                    server,
                    watch_state_path(self.services.settings.data_dir, server),
                )
                watchers.append(watcher)
                tasks.create_task(watcher.run(self._take_note))
            tasks.create_task(self._warm_all(stop))
            await stop.wait()
            self.brain.speculations.discard_all()
            await self.read_ahead.aclose()
            for watcher in watchers:
                watcher.stop()

    async def _warm_all(self, stop: asyncio.Event) -> None:
        for server in self.services.registry.server_names():
            if stop.is_set():
                return
            await self._warm(server, stop)
        self.warmed.set()

    async def _warm(self, server: str, stop: asyncio.Event) -> None:
        """The embedded model keeps each NPC's persona prefix in this process: fill it before the first player
        speaks, so no first turn pays the whole prompt (about a second per NPC on two cores). A stop signal abandons
        it at once: the llama.cpp worker ends at its next token, and a prompt it is still reading is left to it."""
        part = f"warm-up of '{server}'"
        warming = asyncio.ensure_future(warm_personas(self.brain, server, embedded_only=True))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({warming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not warming.done():
                warming.cancel()
                log.info("%s abandoned: stopping", part)
                return
            spent = warming.result()
        except NpcHostError as exc:  # only a speed-up: the turns themselves report what is wrong
            log.warning("persona prefixes of '%s' were not warmed: %s", server, exc.message)
            self.services.progress.done(part, failed=True)
            return
        finally:
            stopping.cancel()
        if spent:
            log.info("warmed %d persona prefix(es) of '%s' in %.0f ms", len(spent), server, sum(spent.values()))
        self.services.progress.done(part)

    async def publish(self, event: Event) -> None:
        await self.services.bus.publish(stream_for(event), event)

    async def on_said(self, event: Event) -> None:
        if isinstance(event, PlayerSaidTentative):
            metrics.EVENTS_HANDLED.labels(type=event.type).inc()
            try:
                await self.brain.sync_paused(event.server)
                # Returns at once: the turn runs held back until the line is final, its first sentence's speech
                # made meanwhile by the speech role of this process (if one runs here).
                await self.brain.speculate(
                    event,
                    on_hold=functools.partial(self._speak_ahead, event),
                    on_drop=functools.partial(self._unsay_ahead, event),
                )
            except NpcHostError as exc:  # only a head start: the final line is answered all the same
                log.warning("no speculative answer for %s: %s", event.player, exc.message)
            return
        if not isinstance(event, PlayerSaid):
            return
        metrics.EVENTS_HANDLED.labels(type=event.type).inc()
        try:
            await self._answer_line(event)
        finally:
            self.brain.speculations.settle_line(event)  # one started on this line that no answer took is dropped

    def _speak_ahead(self, said: PlayerSaidTentative, npc_id: str, sentence: TurnSentence) -> None:
        if (voice := self._voice(said, npc_id)) is not None:
            self.services.speech_ahead.prepare(voice, sentence.text, sentence.emotion)

    def _unsay_ahead(self, said: PlayerSaidTentative, npc_id: str, sentence: TurnSentence) -> None:
        """The speculative turn was discarded: its sentence's speech, if still being made, is not needed."""
        if (voice := self._voice(said, npc_id)) is not None:
            self.services.speech_ahead.drop(voice, sentence.text, sentence.emotion)

    def _voice(self, said: PlayerSaidTentative, npc_id: str) -> VoiceSpec | None:
        try:
            return self.services.registry.npc(said.server, npc_id).voice
        except UnknownNpcError:  # its profile was removed meanwhile: only a head start is lost
            return None

    async def _answer_line(self, event: PlayerSaid) -> None:
        await self.brain.sync_paused(event.server)
        addressing = self.brain.addressing(event)
        if not addressing.responders:
            if addressing.hearers:
                await self.brain.note_unanswered(event)
            return
        for npc_id in addressing.responders:
            previous = await self.brain.already_answered(event, npc_id)
            if previous is not None:
                log.info("line %s was already answered by %s (redelivery)", event.id, npc_id)
                # The first delivery may have died before announcing the end; consumers that got it drop this copy.
                await self.publish(previous)
                continue
            await self._answer(event, npc_id)

    async def _answer(self, said: PlayerSaid, npc_id: str) -> None:
        async def started(turn: StartedTurn) -> None:
            await self.publish(
                NpcTurnStarted(
                    server=said.server,
                    npc=npc_id,
                    player=said.player,
                    turn_id=turn.turn_id,
                    cause_id=said.id,
                    speech_end_ts=said.speech_end_ts,
                )
            )

        async def sentence(turn: StartedTurn, spoken: TurnSentence) -> None:
            turn.marks.setdefault("first_sentence", time.time())
            event = NpcSentence(
                server=said.server,
                npc=npc_id,
                player=said.player,
                turn_id=turn.turn_id,
                index=spoken.index,
                text=spoken.text,
                emotion=spoken.emotion,
            )
            if spoken.index > 0:
                await self.publish(event)
                return
            # The next sentences wait until this one's audio is out: they would slow it down on the same cores.
            async with self.services.first_audio.first_sentence(turn.turn_id) as first_audio:
                await self.publish(event)
            if first_audio.at is not None:
                turn.marks.setdefault("first_audio", first_audio.at)

        ended = await self.brain.answer(said, npc_id, sentence, on_start=started)
        if ended is None:
            return
        await self.publish(ended)
        self.read_ahead.after(said, npc_id)
        metrics.observe_turn(ended.timings_ms, server=said.server, npc=npc_id)
        for stage, key in _VOICE_STAGES.items():
            if (ms := ended.timings_ms.get(key)) is not None:
                metrics.observe_voice_stage_ms(said.server, npc_id, stage, ms)
        outcome = "interrupted" if ended.interrupted else "completed"
        metrics.TURNS_TOTAL.labels(server=said.server, npc=npc_id, outcome=outcome).inc()

    async def on_trial(self, event: Event) -> None:
        """Answer an admin's line against a draft profile, unless the admin has stopped waiting for it."""
        if not isinstance(event, NpcTrial) or time.time() > event.deadline_ts:
            return
        log.info("%s tries a line against a draft of %s", event.author, event.profile.id)
        try:
            result = await self.brain.try_line(event.server, event.profile, event.player, event.text)
        except NpcHostError as exc:  # e.g. a server this brain does not know: the admin sees why
            reply = NpcTrialReply(server=event.server, trial_id=event.id, npc=event.profile.id, error=exc.message)
        else:
            reply = NpcTrialReply(
                server=event.server,
                trial_id=event.id,
                npc=event.profile.id,
                reply=result.reply,
                dropped=[f"{dropped.text} ({dropped.reason})" for dropped in result.dropped],
                error=result.error,
            )
        await self.publish(reply)

    async def on_positions(self, event: Event) -> None:
        if isinstance(event, Positions):
            self.brain.track(event)

    async def on_control(self, event: Event) -> None:
        metrics.EVENTS_HANDLED.labels(type=event.type).inc()
        transcripts = self.services.transcripts
        if isinstance(event, PlayerSpeechStarted):
            # Not a barge-in here (the bridge decides those, as NpcTurnCut): an answer started on what the player
            # said before is dropped, for they are speaking again.
            self.brain.speculations.speaking_again(event)
        elif isinstance(event, PlayerLeft):
            self.brain.forget_player(event.server, event.player)
        elif isinstance(event, AdminNote):
            # Written to the transcript only: the note watcher delivers it to memory like a hand-written note.
            await transcripts.append(event.server, admin_note_line(event))
        elif isinstance(event, NpcTurnCut):
            # Cut in the players' ears (barge-in, stop): writing stops, and the record keeps what was heard.
            if self.brain.stop_turn(event.turn_id):
                log.info("barge-in: %s stops answering %s", event.npc, event.player)
            if not await self.brain.store.conversations.cut_turn(event.turn_id, event.heard):
                raise NotReadyError(f"turn {event.turn_id} is not recorded yet; the cut is retried")
            await transcripts.append(event.server, turn_cut_line(event))
        elif isinstance(event, AdminCorrection):
            try:
                await self.brain.store.steering.add_correction(NewCorrection.from_event(event))
            except NotFoundError as exc:  # a turn id nobody recorded: nothing to correct, but it goes on record
                log.warning("correction not applied: %s", exc.message)
            await transcripts.append(event.server, correction_line(event))
        elif isinstance(event, NpcActed):
            await transcripts.append(event.server, acted_line(event))
        elif isinstance(event, NpcControl):
            await transcripts.append(event.server, control_line(event))
            if event.action in ("pause", "resume"):
                await self.brain.pause(event.server, event.npc, event.action == "pause")
            elif event.action in ("mute", "unmute"):
                # Held in the database like a pause: the gateway's bridge and the admin page read it after a restart.
                await self.brain.store.steering.set_muted(event.server, event.npc, event.action == "mute")
            elif event.action == "say" and event.text:
                await perform_say(event, self.brain.store, transcripts, self.publish)

    async def _take_note(self, note: AdminNote) -> None:
        await self.brain.memory.add_note(note.server, note.npc, NpcNote.from_event(note))
