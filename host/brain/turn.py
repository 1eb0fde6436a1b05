"""One persona turn: prompt -> streamed LLM reply -> sentences -> guard -> each kept sentence as soon as it is ready.

    async with contextlib.aclosing(run_turn(llm, profile, server, context)) as events:
        async for event in events:
            if isinstance(event, TurnSentence):
                speak(event.text, event.emotion)      # first audio long before the reply is finished
            else:
                record(event)                          # TurnResult: reply, dropped sentences, timings

Generation stops once `profile.llm.max_reply_sentences` sentences were kept (the LLM stream is closed, which cancels
it). Cancelling the consumer (barge-in) or closing the iteration also closes the LLM stream; `PersonaTurn.result`
then records exactly the sentences that were handed out, with outcome "interrupted". When the guard drops every
sentence, or the backend fails before any sentence was kept, the NPC says its profile's refusal line instead: an NPC
never answers with nothing. This module does no I/O of its own: transcripts, memory and the bus are the caller's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from host.brain.guard import DroppedSentence, OutOfCharacterGuard
from host.brain.loops import looping
from host.brain.prompt import (
    EXAMPLE_PLAYER,
    Exchange,
    PromptLimits,
    PromptPlan,
    TurnContext,
    build_prompt,
    speaker_name,
)
from host.brain.sentences import Sentence, SentenceSplitter
from host.brain.tokens import TokenCounter, approx_token_count
from host.llm.base import LLM, ChatMessage, GenerationOptions, LLMError, close_stream
from host.npc_actions import action_tags
from host.profiles.schema import NpcProfile, ServerProfile

__all__ = [
    "Exchange",
    "PersonaTurn",
    "TurnContext",
    "TurnEvent",
    "TurnOptions",
    "TurnResult",
    "TurnSentence",
    "TurnTimings",
    "run_turn",
]

log = logging.getLogger(__name__)
_LOOP_PIECES = 40  # the last pieces a loop is looked for in (five copies of a unit fit in far fewer)

TurnOutcome = Literal["completed", "max_sentences", "looped", "interrupted", "failed"]


@dataclass(frozen=True, slots=True)
class TurnOptions:
    limits: PromptLimits = field(default_factory=PromptLimits)
    count_tokens: TokenCounter = approx_token_count
    first_clause_min_chars: int | None = None  # SentenceSplitter's early first-clause cut; None = whole sentences
    seed: int | None = None  # None: the profile's `llm.seed`, else a fresh random seed every turn


@dataclass(frozen=True, slots=True)
class TurnSentence:
    """A sentence to speak and show now. `index` counts kept sentences from 0."""

    index: int
    text: str
    emotion: str | None = None


@dataclass(frozen=True, slots=True)
class TurnTimings:
    """Milliseconds since the turn started; None for a stage the turn never reached."""

    prompt: float
    first_token: float | None
    first_sentence: float | None
    total: float


@dataclass(frozen=True, slots=True)
class TurnResult:
    reply: str
    sentences: tuple[TurnSentence, ...]
    dropped: tuple[DroppedSentence, ...]
    outcome: TurnOutcome
    fallback: bool
    timings: TurnTimings
    plan: PromptPlan
    error: str | None = None
    actions: tuple[str, ...] = ()  # action tags of the reply (host/npc_actions.py), never spoken


TurnEvent = TurnSentence | TurnResult


class PersonaTurn:
    """Runs one turn; `result` is set when the stream ends, however it ends (finished, cut short or interrupted)."""

    def __init__(
        self,
        llm: LLM,
        profile: NpcProfile,
        server: ServerProfile,
        context: TurnContext,
        options: TurnOptions = TurnOptions(),
    ) -> None:
        self._llm = llm
        self._profile = profile
        self._server = server
        self._context = context
        self._options = options
        self._guard = OutOfCharacterGuard(
            profile,
            player_line=context.text,
            earlier_replies=[exchange.npc_text for exchange in context.recent],
            public=[entry.content for entry in server.lore if entry.enabled],
        )
        self._kept: list[TurnSentence] = []
        self._dropped: list[DroppedSentence] = []
        self._clauses = 0  # kept sentences that are a first clause cut early
        self._open_clause = False  # the last kept sentence is such a clause: the next one is the rest of it
        self._marks: dict[str, float] = {}
        self._started = 0.0
        self.started_at: float | None = None  # wall time the turn began (a speculative turn: before its line was final)
        self._raw: list[str] = []  # the whole reply as written, for its action tags
        self.result: TurnResult | None = None

    def seed(self) -> int:
        """The turn's sampling seed: the configured one, else fresh each turn, so a retry or a new process does not
        replay the same reply."""
        if self._options.seed is not None:
            return self._options.seed
        if self._profile.llm.seed is not None:
            return self._profile.llm.seed
        return secrets.randbelow(2**31)

    def generation_options(self) -> GenerationOptions:
        llm = self._profile.llm
        return GenerationOptions(
            temperature=llm.temperature,
            max_tokens=llm.max_reply_tokens,
            # The model writing the player's (or the examples' traveler's) next line is a hallucinated turn.
            stop=(f"{speaker_name(self._context.player)}:", f"{EXAMPLE_PLAYER}:"),
            seed=self.seed(),
            model=llm.model,
            cache_key=f"{self._server.name}/{self._profile.id}",
        )

    def prompt(self) -> tuple[ChatMessage, ...]:
        """The messages this turn sends its model."""
        return self._plan().messages

    def prompt_start(self) -> tuple[ChatMessage, ...]:
        """This turn's prompt up to its last message (the line with its notes): what any later line of the same
        player to the same NPC begins with, once this turn's exchange is recorded."""
        return self.prompt()[:-1]

    def _plan(self) -> PromptPlan:
        return build_prompt(
            self._profile,
            self._server,
            self._context,
            limits=self._options.limits,
            count_tokens=self._options.count_tokens,
        )

    async def stream(self) -> AsyncGenerator[TurnEvent, None]:
        self._started = time.perf_counter()
        self.started_at = time.time()
        plan = self._plan()
        self._mark("prompt")
        splitter = SentenceSplitter(first_clause_min_chars=self._options.first_clause_min_chars)
        pieces = self._llm.stream(plan.messages, self.generation_options())
        error: str | None = None
        cut_short = looped = False
        try:
            async for piece in pieces:
                if piece and "first_token" not in self._marks:
                    self._mark("first_token")
                self._raw.append(piece)
                for event in self._keep(splitter.feed(piece)):
                    yield event
                if not self._kept:  # all the guard let through so far is nothing: the next sentence is the first
                    splitter.first_sentence_again()
                if self._full():
                    cut_short = True
                    break
                if looping("".join(self._raw[-_LOOP_PIECES:])):
                    looped = True
                    break
            else:
                for event in self._keep(splitter.flush()):
                    yield event
        except LLMError as exc:
            log.warning("NPC %s: %s", self._profile.id, exc.message)
            error = exc.message
        except (GeneratorExit, asyncio.CancelledError):
            self.result = self._finish(plan, "interrupted", error=None)
            raise
        except Exception as exc:
            self.result = self._finish(plan, "failed", error=repr(exc))
            raise
        finally:
            await close_stream(pieces)

        fallback = not self._kept
        if fallback:
            self._kept.append(TurnSentence(0, self._profile.safety.refusal_line))
        outcome: TurnOutcome = (
            "failed" if error else "max_sentences" if cut_short else "looped" if looped else "completed"
        )
        self.result = self._finish(plan, outcome, error=error, fallback=fallback)
        if fallback:
            yield self._kept[0]
        yield self.result

    def _keep(self, sentences: Iterable[Sentence]) -> Iterator[TurnSentence]:
        for sentence in sentences:
            if self._full():
                return
            verdict = self._guard.check(sentence)
            continues_clause, self._open_clause = self._open_clause, False
            if isinstance(verdict, DroppedSentence):
                # The reason only: the text may hold the very secret the guard kept from being spoken.
                log.info("NPC %s: dropped a sentence (%s)", self._profile.id, verdict.reason)
                self._dropped.append(verdict)
                self._clauses -= continues_clause  # the clause said alone is a sentence of the reply after all
                continue
            event = TurnSentence(len(self._kept), verdict.text, verdict.emotion)
            self._clauses += sentence.clause
            self._open_clause = sentence.clause
            self._kept.append(event)  # before yielding: once yielded, it counts as said even if the consumer leaves
            if "first_sentence" not in self._marks:
                self._mark("first_sentence")
            yield event

    def _full(self) -> bool:
        # A first clause cut early is part of a sentence, not one of the reply's sentences.
        return len(self._kept) - self._clauses >= self._profile.llm.max_reply_sentences

    def _mark(self, stage: str) -> None:
        self._marks[stage] = (time.perf_counter() - self._started) * 1000.0

    def _finish(
        self, plan: PromptPlan, outcome: TurnOutcome, *, error: str | None, fallback: bool = False
    ) -> TurnResult:
        self._mark("total")
        timings = TurnTimings(
            prompt=self._marks["prompt"],
            first_token=self._marks.get("first_token"),
            first_sentence=self._marks.get("first_sentence"),
            total=self._marks["total"],
        )
        return TurnResult(
            reply=" ".join(sentence.text for sentence in self._kept),
            sentences=tuple(self._kept),
            dropped=tuple(self._dropped),
            outcome=outcome,
            fallback=fallback,
            timings=timings,
            plan=plan,
            error=error,
            actions=tuple(action_tags("".join(self._raw))),
        )


async def run_turn(
    llm: LLM,
    profile: NpcProfile,
    server_profile: ServerProfile,
    context: TurnContext,
    options: TurnOptions = TurnOptions(),
) -> AsyncGenerator[TurnEvent, None]:
    """Kept sentences as they are ready, then the TurnResult. Use `PersonaTurn` to read the result after a barge-in."""
    events = PersonaTurn(llm, profile, server_profile, context, options).stream()
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()
