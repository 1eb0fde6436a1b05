"""The NPCs' brain: decides who answers a player's line, runs the persona turn with the NPC's memory and notes, and
records what was said (database, memory, transcript). Used by the brain role, `npc-host chat` and the demo.

A turn's id is derived from the line's event id and the NPC, so a redelivered line (the hub delivers at least once)
maps to the same turn and `record` never stores or writes it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from host.brain.addressing import Addressing, address
from host.brain.advice import DEFAULT_ADVICE_TOKENS, advice_lines
from host.brain.prompt import Exchange, PromptLimits, TurnContext
from host.brain.speculation import SentenceGate, Speculation, SpeculativeTurns
from host.brain.summary import llm_summarizer
from host.brain.turn import PersonaTurn, TurnOptions, TurnResult, TurnSentence
from host.events import NpcTurnEnded, PlayerSaid, PlayerSaidTentative, Position, Positions
from host.llm.base import LLM
from host.memory import MemoryStore, RememberedExchange
from host.player_state import PlayerMemory
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import NpcProfile, Vec3
from host.speech.turn_taking import few_words
from host.store import ConversationKey, Store, TurnRecord
from host.transcript.book import TranscriptBook
from host.transcript.from_events import player_said_line, turn_ended_line

log = logging.getLogger(__name__)

_TURN_NAMESPACE = uuid.UUID("5d4c7d2e-0f61-4a0e-9f0e-2b1f4c7a9e10")

LlmFor = Callable[[NpcProfile], LLM]


def turn_id_for(said: PlayerSaid, npc_id: str) -> str:
    return uuid.uuid5(_TURN_NAMESPACE, f"{said.server}/{said.id}/{npc_id}").hex


@dataclass(frozen=True, slots=True)
class StartedTurn:
    turn_id: str
    npc: NpcProfile
    persona: PersonaTurn
    # Wall times of what the caller saw happen to the turn ("first_sentence" published, "first_audio" out), for its
    # timings; a committed speculative turn shares them with the turn it was.
    marks: dict[str, float] = field(default_factory=dict)


OnStart = Callable[[StartedTurn], Awaitable[None]]
OnSentence = Callable[[StartedTurn, TurnSentence], Awaitable[None]]


class NpcBrain:
    def __init__(
        self,
        registry: ProfileRegistry,
        store: Store,
        memory: MemoryStore,
        transcripts: TranscriptBook,
        llm_for: LlmFor,
        *,
        context_tokens: int = 2048,
        first_clause_min_chars: int | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.memory = memory
        self.transcripts = transcripts
        self.llm_for = llm_for
        self._options = TurnOptions(
            limits=PromptLimits(context_tokens=context_tokens), first_clause_min_chars=first_clause_min_chars
        )
        self._last_partner: PlayerMemory[tuple[str, str], str] = PlayerMemory()  # forgotten with the player
        self._paused: set[tuple[str, str]] = set()
        self._speaking: dict[str, asyncio.Task[None]] = {}  # turn id -> its running turn, until it is recorded
        self.speculations = SpeculativeTurns()
        self._moved: dict[tuple[str, str], Position] = {}  # where the game says an NPC stands, if not its profile spot

    def addressing(self, said: PlayerSaid) -> Addressing:
        """Who hears the line and who answers, in speaking order; paused NPCs neither hear nor answer."""
        npcs = [
            self._where_it_stands(said.server, npc)
            for npc in self.registry.npcs(said.server).values()
            if (said.server, npc.id) not in self._paused
        ]
        return address(said, npcs, self._last_partner.get((said.server, said.player)))

    def track(self, positions: Positions) -> None:
        """Follow NPCs the game moved (`!npc tp bram here`), so hearing ranges count from where they stand."""
        for entity in positions.entities:
            if entity.kind == "npc":
                self._moved[(positions.server, entity.name)] = Position(
                    x=entity.x, y=entity.y, z=entity.z, yaw=entity.yaw, dimension=entity.dimension
                )

    def _where_it_stands(self, server: str, npc: NpcProfile) -> NpcProfile:
        moved = self._moved.get((server, npc.id))
        if moved is None:
            return npc
        world = npc.world.model_copy(
            update={"position": Vec3(x=moved.x, y=moved.y, z=moved.z), "dimension": moved.dimension}
        )
        return npc.model_copy(update={"world": world})

    async def pause(self, server: str, npc_id: str, paused: bool) -> None:
        """Pause or resume an NPC, in the database so every brain process holds to it."""
        await self.store.steering.set_paused(server, npc_id, paused)
        if paused:
            self._paused.add((server, npc_id))
        else:
            self._paused.discard((server, npc_id))

    async def sync_paused(self, server: str) -> None:
        """Take up pauses another brain process applied (read before each line is addressed)."""
        paused = await self.store.steering.paused_npcs(server)
        self._paused = {key for key in self._paused if key[0] != server} | {(server, npc) for npc in paused}

    def is_paused(self, server: str, npc_id: str) -> bool:
        return (server, npc_id) in self._paused

    async def already_answered(self, said: PlayerSaid, npc_id: str) -> NpcTurnEnded | None:
        """The stored end of this line's turn for `npc_id` when it was answered before (a redelivery), else None.
        A transcript that misses it (the process died between the database and the file) gets it now."""
        stored = await self.store.conversations.turn_by_cause(_cause_id(said, npc_id))
        if stored is None:
            return None
        turn_id = stored.turn_id or turn_id_for(said, npc_id)
        ended = NpcTurnEnded(
            id=_ended_id(turn_id),
            server=said.server,
            npc=npc_id,
            player=said.player,
            turn_id=turn_id,
            cause_id=said.id,
            reply=stored.npc_reply,
            interrupted=stored.interrupted,
            timings_ms=stored.timings_ms,
            ts=stored.created_at.timestamp(),
        )
        if not await self.transcripts.has_turn(said.server, turn_id):
            await self.transcripts.append(
                said.server, player_said_line(said, npc_id), turn_ended_line(ended, stored.emotion)
            )
        return ended

    async def answer(
        self, said: PlayerSaid, npc_id: str, on_sentence: OnSentence, on_start: OnStart | None = None
    ) -> NpcTurnEnded | None:
        """Run `npc_id`'s turn answering `said`: each kept sentence goes to `on_sentence` as soon as it is ready,
        then the turn is recorded. `stop_turn` (barge-in) stops it; it is then recorded with what was said so far.
        None when the turn was stopped before it began."""
        speculation = self.speculations.claim(said, npc_id)
        # A held speculation parks its model's worker after its first sentence (llama.cpp runs one generation at a
        # time): a real answer must not queue behind another player's head start.
        self.speculations.discard_others(said.server, said.player)
        speaking: asyncio.Task[None] | None = None
        if speculation is not None:
            # Started on the tentative line: the same turn, under the final line's id, goes public from here on.
            turn = dataclasses.replace(speculation.turn, turn_id=turn_id_for(said, npc_id))
            speaking = self._speaking[turn.turn_id] = speculation.task
        else:
            turn = await self.start(said, npc_id)
        try:
            if on_start is not None:
                await on_start(turn)
            if speculation is not None:
                await speculation.gate.open(functools.partial(on_sentence, turn))  # what it wrote goes out now
                running = speculation.task
            else:
                running = asyncio.create_task(_speak(turn, on_sentence), name=f"turn:{turn.turn_id}")
                speaking = self._speaking[turn.turn_id] = running
            await asyncio.wait({running})
        finally:
            if speaking is not None and self._speaking.get(turn.turn_id) is speaking:
                del self._speaking[turn.turn_id]
            if speaking is not None and not speaking.done():
                # This answer was cancelled (shutdown) or failed: the turn must not speak on without it.
                speaking.cancel()
                await asyncio.wait({speaking})
        assert speaking is not None  # set on every path that gets here
        if not speaking.cancelled() and (error := speaking.exception()) is not None:
            raise error
        result = turn.persona.result
        if result is None:
            return None
        ended = self.ended_event(said, turn, result)
        await self.record(said, turn, ended)
        return ended

    def forget_player(self, server: str, player: str) -> None:
        """The player left: whom they last spoke with no longer decides who answers them when they come back."""
        self._last_partner.forget((server, player))
        self.speculations.forget_player(server, player)

    async def speculate(
        self,
        tentative: PlayerSaidTentative,
        on_hold: Callable[[str, TurnSentence], None] | None = None,
        on_drop: Callable[[str, TurnSentence], None] | None = None,
    ) -> str | None:
        """Start the answer to a line that is not final yet (host/brain/speculation.py): the NPC that would answer
        first writes its reply, held back until `answer` gets the same line. The NPC's id, or None when nobody
        would answer or the line came after its final version. `on_hold(npc_id, sentence)` is told of each sentence
        held back, `on_drop(npc_id, sentence)` of each one still held when the turn is discarded."""
        if self.speculations.stale(tentative):
            return None
        said = tentative.as_said()
        responders = self.addressing(said).responders
        if not responders:
            self.speculations.discard(said.server, said.player, reason="a newer line nobody answers")
            return None
        npc_id = responders[0]
        if few_words(said.text):
            # "Bram," (or "Brand." as Whisper may hear it) before the question itself: a player who paused after a
            # word or two nearly always goes on, and an answer started now would cost its tokens (and hold the model)
            # while they speak. Said alone, such a line is answered at the endpoint.
            return None
        turn = await self.start(said, npc_id)
        gate = SentenceGate(
            None if on_hold is None else functools.partial(on_hold, npc_id),
            None if on_drop is None else functools.partial(on_drop, npc_id),
        )

        async def hold(_turn: StartedTurn, sentence: TurnSentence) -> None:
            await gate(sentence)

        task = asyncio.create_task(_speak(turn, hold), name=f"speculative-turn:{npc_id}:{said.player}")
        self.speculations.add(Speculation(tentative, npc_id, turn, gate, task))
        return npc_id

    def stop_turn(self, turn_id: str) -> bool:
        """Stop writing a turn the players cut off (barge-in, decided by the voice bridge: host/roles/bridge.py); it
        is then recorded with what was said so far. True if it was still being written here."""
        speaking = self._speaking.get(turn_id)
        if speaking is None or speaking.done():
            return False
        speaking.cancel()
        return True

    async def start(self, said: PlayerSaid, npc_id: str) -> StartedTurn:
        """A persona turn for `npc_id` answering `said`, with the NPC's current profile, memory and notes."""
        npc = self.registry.npc(said.server, npc_id)
        server = self.registry.server(said.server)
        key = ConversationKey(server=said.server, npc=npc_id, player=said.player)
        conversation = await self.memory.conversation(key)
        notes, advice = await self._steering(said.server, npc_id)
        context = TurnContext(
            player=said.player,
            text=said.text,
            language=said.language,
            notes=notes,
            advice=advice,
            summary=conversation.summary,
            recent=tuple(
                Exchange(player=said.player, player_text=item.player_text, npc_text=item.npc_reply)
                for item in conversation.exchanges
            ),
        )
        persona = PersonaTurn(self.llm_for(npc), npc, server, context, self._options)
        return StartedTurn(turn_id_for(said, npc_id), npc, persona)

    async def _steering(self, server: str, npc_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The NPC's notes and its active advice lines, as its next prompt gets them."""
        profile = self.registry.server(server)
        notes = await self.memory.notes(server, npc_id)
        advice_budget = profile.advisor.advice_tokens if profile.advisor is not None else DEFAULT_ADVICE_TOKENS
        advice = await self.store.steering.active_advice(server, npc_id)
        return tuple(note.text for note in notes), advice_lines(advice, advice_budget)

    async def try_line(self, server: str, npc: NpcProfile, player: str, text: str) -> TurnResult:
        """How `npc` (a draft profile, maybe not saved yet) answers `text` from a stranger, with the NPC's current
        notes and advice. Nothing is recorded and nothing is said: no database, memory, transcript, chat or voice."""
        notes, advice = await self._steering(server, npc.id)
        context = TurnContext(player=player, text=text, notes=notes, advice=advice)
        persona = PersonaTurn(self.llm_for(npc), npc, self.registry.server(server), context, self._options)
        async with contextlib.aclosing(persona.stream()) as events:
            async for _ in events:
                pass
        if persona.result is None:  # a stream that ends always sets it; a failure here is a bug, not a reply
            raise RuntimeError(f"the trial turn of {npc.id} ended without a result")
        return persona.result

    def ended_event(self, said: PlayerSaid, turn: StartedTurn, result: TurnResult) -> NpcTurnEnded:
        return NpcTurnEnded(
            id=_ended_id(turn.turn_id),
            server=said.server,
            npc=turn.npc.id,
            player=said.player,
            turn_id=turn.turn_id,
            cause_id=said.id,
            reply=result.reply,
            interrupted=result.outcome == "interrupted",
            timings_ms={stage: round(ms, 1) for stage, ms in turn_timings(said, turn, result).items()},
            actions=list(result.actions),
        )

    async def record(self, said: PlayerSaid, turn: StartedTurn, ended: NpcTurnEnded) -> bool:
        """Store the turn, fold it into memory and append it to the transcript, once. False if it was already stored
        (another delivery of the same line got there first)."""
        key = ConversationKey(server=said.server, npc=turn.npc.id, player=said.player)
        emotion = _first_emotion(turn)
        created = await self.store.conversations.record_turn(
            TurnRecord(
                server=said.server,
                npc=turn.npc.id,
                player=said.player,
                cause_id=_cause_id(said, turn.npc.id),
                turn_id=turn.turn_id,
                source=said.source,
                player_text=said.text,
                npc_reply=ended.reply,
                interrupted=ended.interrupted,
                emotion=emotion,
                timings_ms=ended.timings_ms,
            )
        )
        if not created:
            return False
        summarize = llm_summarizer(self.llm_for(turn.npc), turn.npc.name, said.player)
        exchange = RememberedExchange(
            player_text=said.text, npc_reply=ended.reply, interrupted=ended.interrupted, turn_id=turn.turn_id
        )
        await self.memory.record(key, exchange, summarize)
        # After the database: a crash in between is repaired by the redelivery (`already_answered`).
        await self.transcripts.append(said.server, player_said_line(said, turn.npc.id), turn_ended_line(ended, emotion))
        self._last_partner[(said.server, said.player)] = turn.npc.id
        return True

    async def note_unanswered(self, said: PlayerSaid) -> None:
        """A line an NPC heard but nobody answered still belongs in the transcript."""
        await self.transcripts.append(said.server, player_said_line(said))


def turn_timings(said: PlayerSaid, turn: StartedTurn, result: TurnResult) -> dict[str, float]:
    """A turn's stage timings in ms: from the turn's start (`prompt`, `first_token`, `first_sentence`,
    `first_audio`, `total`) and, for a spoken line, from the end of the player's speech (`endpoint_after_speech`,
    `transcript_after_speech`, `first_token_after_speech`, `first_sentence_after_speech`,
    `first_audio_after_speech`); a stage the turn never reached, or that was not seen here, is left out."""
    timings = {"prompt": result.timings.prompt, "total": result.timings.total}
    started = turn.persona.started_at
    if said.stt_ms is not None:
        timings["stt"] = said.stt_ms
    at: dict[str, float | None] = {
        "endpoint": said.endpoint_ts,
        "transcript": said.ts if said.speech_end_ts is not None else None,
        "first_token": None
        if started is None or result.timings.first_token is None
        else started + result.timings.first_token / 1000.0,
        # Published, not written: a speculative turn writes its first sentence before the line is final.
        "first_sentence": turn.marks.get("first_sentence"),
        "first_audio": turn.marks.get("first_audio"),
    }
    for stage in ("first_token", "first_sentence", "first_audio"):
        if started is not None and (wall := at[stage]) is not None:
            timings[stage] = (wall - started) * 1000.0
    if result.timings.first_sentence is not None and "first_sentence" not in timings:
        timings["first_sentence"] = result.timings.first_sentence
    if said.speech_end_ts is not None:  # a spoken line: when each milestone came after the end of the speech
        for stage, wall in at.items():
            if wall is not None:
                timings[f"{stage}_after_speech"] = (wall - said.speech_end_ts) * 1000.0
    return timings


async def _speak(turn: StartedTurn, on_sentence: OnSentence) -> None:
    async with contextlib.aclosing(turn.persona.stream()) as events:
        async for event in events:
            if isinstance(event, TurnSentence):
                await on_sentence(turn, event)


def _ended_id(turn_id: str) -> str:
    """The same id every time a turn's end is announced, so consumers drop the copy a redelivery re-announces."""
    return uuid.uuid5(_TURN_NAMESPACE, f"{turn_id}/ended").hex


def _cause_id(said: PlayerSaid, npc_id: str) -> str:
    return f"{said.id}:{npc_id}"


def _first_emotion(turn: StartedTurn) -> str | None:
    result = turn.persona.result
    if result is None:
        return None
    return next((sentence.emotion for sentence in result.sentences if sentence.emotion), None)
