"""Persona turns through a real backend (the Ollama client) against the Ollama wire double on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from host.brain.turn import PersonaTurn, TurnContext, TurnEvent, TurnOptions, TurnResult, TurnSentence, run_turn
from host.llm.base import ChatMessage, GenerationOptions
from host.llm.ollama_backend import OllamaLLM
from host.llm.retry import RetryPolicy
from host.profiles.schema import NpcProfile, ServerProfile
from tests.doubles.ollama_server import HttpFault, OllamaWireServer, split_into_pieces

SERVER = ServerProfile(name="village")
REFUSAL = "Hmph. Ask me something else, friend."
CONTEXT = TurnContext(player="Alice", text="What do you sell?")


def make_profile(max_sentences: int = 3) -> NpcProfile:
    return NpcProfile.model_validate(
        {
            "id": "bram",
            "name": "Bram",
            "persona": {"description": "The innkeeper of the Sleeping Fox."},
            "world": {"position": {"x": 0, "y": 64, "z": 0}},
            "llm": {"temperature": 0.3, "max_reply_sentences": max_sentences, "max_reply_tokens": 90},
            "safety": {"refusal_line": REFUSAL},
        }
    )


class RecordingLLM:
    """Passes the real backend's pieces through unchanged and logs each one, to see how a turn interleaves them."""

    name = "recording"

    def __init__(self, inner: OllamaLLM, log: list[tuple[str, str]]) -> None:
        self.inner = inner
        self.log = log

    async def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        pieces = self.inner.stream(messages, options)
        try:
            async for piece in pieces:
                self.log.append(("piece", piece))
                yield piece
        finally:
            await pieces.aclose()  # type: ignore[attr-defined]
            self.log.append(("closed", ""))

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def ollama(replies: Sequence[str], **double: object) -> AsyncIterator[tuple[OllamaWireServer, OllamaLLM]]:
    async with OllamaWireServer(replies=replies, **double) as server:  # type: ignore[arg-type]
        llm = OllamaLLM(url=server.url, model="double", retry=RetryPolicy(retries=0))
        try:
            yield server, llm
        finally:
            await llm.aclose()


async def collect(events: AsyncGenerator[TurnEvent, None]) -> tuple[list[TurnSentence], TurnResult]:
    sentences: list[TurnSentence] = []
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, TurnResult):
                return sentences, event
            sentences.append(event)
    raise AssertionError("the turn ended without a result")


async def test_sentences_are_yielded_while_the_server_is_still_streaming() -> None:
    reply = "[happy] Welcome to the Sleeping Fox. We have ale and bread. Rooms cost two coins."
    log: list[tuple[str, str]] = []
    async with ollama([reply], chunk_delay_s=0.005) as (server, backend):
        llm = RecordingLLM(backend, log)
        async with contextlib.aclosing(run_turn(llm, make_profile(), SERVER, CONTEXT)) as events:
            async for event in events:
                if isinstance(event, TurnSentence):
                    log.append(("sentence", event.text))
                else:
                    result = event

    pieces = [text for kind, text in log if kind == "piece"]
    assert pieces == split_into_pieces(reply)
    first_sentence = log.index(("sentence", "Welcome to the Sleeping Fox."))
    assert first_sentence < log.index(("piece", " coins."))  # spoken before the last piece had arrived
    assert [text for kind, text in log if kind == "sentence"] == [
        "Welcome to the Sleeping Fox.",
        "We have ale and bread.",
        "Rooms cost two coins.",
    ]
    assert result.sentences[0].emotion == "happy"
    assert result.reply == "Welcome to the Sleeping Fox. We have ale and bread. Rooms cost two coins."
    assert (result.outcome, result.fallback, result.dropped) == ("completed", False, ())
    timings = result.timings
    assert timings.first_token is not None and timings.first_sentence is not None
    assert timings.prompt <= timings.first_token <= timings.first_sentence <= timings.total

    body = server.chat_bodies[0]
    assert body["options"]["temperature"] == 0.3 and body["options"]["num_predict"] == 90
    assert body["options"]["stop"] == ["Alice:", "Traveler:"]
    assert body["messages"][0]["role"] == "system" and "Bram" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "Alice: What do you sell?"}


async def test_generation_stops_after_the_maximum_number_of_sentences() -> None:
    reply = "One for you. Two for me. Three for the road. Four for luck. Five for the king. Six for the cat."
    log: list[tuple[str, str]] = []
    async with ollama([reply], chunk_delay_s=0.005) as (_, backend):
        sentences, result = await collect(run_turn(RecordingLLM(backend, log), make_profile(2), SERVER, CONTEXT))
    assert [s.text for s in sentences] == ["One for you.", "Two for me."]
    assert result.outcome == "max_sentences" and result.reply == "One for you. Two for me."
    assert log[-1] == ("closed", "")  # closing the backend's stream is what cancels generation
    assert len(log) - 1 < len(split_into_pieces(reply)) / 2


async def test_a_reply_caught_in_a_loop_stops_at_once_with_the_fallback_line() -> None:
    reply = ", no" * 45  # what the packaged model once wrote to a room question, until its 90-token limit
    log: list[tuple[str, str]] = []
    async with ollama([reply], chunk_delay_s=0.005) as (_, backend):
        sentences, result = await collect(run_turn(RecordingLLM(backend, log), make_profile(2), SERVER, CONTEXT))
    assert result.outcome == "looped" and result.fallback
    assert [s.text for s in sentences] == [make_profile().safety.refusal_line]
    assert log[-1] == ("closed", "")
    assert len(log) - 1 < len(split_into_pieces(reply)) / 4


async def test_a_first_clause_handed_over_early_leaves_the_reply_its_sentences() -> None:
    reply = "Well now, traveler, the road north is long, so rest here. Two for me. Three for the road."
    async with ollama([reply]) as (_, llm):
        options = TurnOptions(first_clause_min_chars=20)
        sentences, result = await collect(run_turn(llm, make_profile(2), SERVER, CONTEXT, options))
    first_clause = "Well now, traveler, the road north is long,"
    assert [s.text for s in sentences] == [first_clause, "so rest here.", "Two for me."]
    assert result.outcome == "max_sentences"
    assert result.reply == "Well now, traveler, the road north is long, so rest here. Two for me."


async def test_a_first_clause_whose_rest_is_dropped_counts_as_a_sentence() -> None:
    reply = "Well now, traveler, the road north is long, as an AI I cannot walk it. Two for me. Three for the road."
    async with ollama([reply]) as (_, llm):
        options = TurnOptions(first_clause_min_chars=20)
        sentences, result = await collect(run_turn(llm, make_profile(2), SERVER, CONTEXT, options))
    assert [s.text for s in sentences] == ["Well now, traveler, the road north is long,", "Two for me."]
    assert result.outcome == "max_sentences"


async def test_the_first_sentence_said_is_cut_early_when_the_one_before_it_was_dropped() -> None:
    """The small model often opens in assistant mode; the sentence the players hear first still goes to speech after
    its first clause, not whole."""
    reply = "As an AI, I cannot see the gate. That is the only way in tonight, so we shut it at the bell. Two for me."
    async with ollama([reply]) as (_, llm):
        options = TurnOptions(first_clause_min_chars=20)
        sentences, result = await collect(run_turn(llm, make_profile(3), SERVER, CONTEXT, options))
    assert [s.text for s in sentences] == [
        "That is the only way in tonight,",
        "so we shut it at the bell.",
        "Two for me.",
    ]
    assert [d.reason for d in result.dropped] == ["out of character: as an AI"]


async def test_out_of_character_sentences_are_never_yielded() -> None:
    reply = "Bram: Welcome in! As an AI, I do not drink ale. The ale is cold, though."
    async with ollama([reply]) as (_, llm):
        sentences, result = await collect(run_turn(llm, make_profile(), SERVER, CONTEXT))
    assert [s.text for s in sentences] == ["Welcome in!", "The ale is cold, though."]
    assert [s.index for s in sentences] == [0, 1]
    assert [(d.text, d.reason) for d in result.dropped] == [
        ("As an AI, I do not drink ale.", "out of character: as an AI")
    ]
    assert "AI" not in result.reply and not result.fallback


async def test_when_every_sentence_is_dropped_the_npc_says_its_refusal_line() -> None:
    reply = "As an AI language model, I cannot answer. I am a helpful assistant."
    async with ollama([reply]) as (_, llm):
        sentences, result = await collect(run_turn(llm, make_profile(), SERVER, CONTEXT))
    assert [s.text for s in sentences] == [REFUSAL]
    assert result.reply == REFUSAL and result.fallback and result.outcome == "completed"
    assert len(result.dropped) == 2


async def test_a_failing_backend_still_gets_an_answer_and_the_error_is_recorded() -> None:
    async with ollama([], faults=[HttpFault(404, 'model "double" not found')]) as (_, llm):
        sentences, result = await collect(run_turn(llm, make_profile(), SERVER, CONTEXT))
    assert [s.text for s in sentences] == [REFUSAL]
    assert result.outcome == "failed" and result.fallback
    assert result.error is not None and "ollama" in result.error and "not found" in result.error


async def test_barge_in_stops_generation_and_keeps_only_what_was_said() -> None:
    reply = "Welcome, friend. " + " ".join(f"Tale number {n} is long." for n in range(40))
    log: list[tuple[str, str]] = []
    async with ollama([reply], chunk_delay_s=0.01) as (_, backend):
        turn = PersonaTurn(RecordingLLM(backend, log), make_profile(12), SERVER, CONTEXT, TurnOptions())
        heard: list[str] = []
        first_heard = asyncio.Event()

        async def listen() -> None:
            async with contextlib.aclosing(turn.stream()) as events:
                async for event in events:
                    assert isinstance(event, TurnSentence)
                    heard.append(event.text)
                    first_heard.set()

        listener = asyncio.create_task(listen())
        await first_heard.wait()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    assert turn.result is not None
    assert turn.result.outcome == "interrupted"
    assert [s.text for s in turn.result.sentences] == heard
    assert heard[0] == "Welcome, friend."
    assert turn.result.reply == " ".join(heard)
    assert log[-1] == ("closed", "")
    assert len(log) - 1 < len(split_into_pieces(reply))


async def test_every_turn_samples_with_a_fresh_seed_unless_one_is_configured() -> None:
    replies = ["Ale and bread."] * 6
    async with ollama(replies) as (server, llm):
        for _ in range(3):
            await collect(run_turn(llm, make_profile(), SERVER, CONTEXT))
        fixed = make_profile().model_copy(update={"llm": make_profile().llm.model_copy(update={"seed": 42})})
        await collect(run_turn(llm, fixed, SERVER, CONTEXT))
        await collect(run_turn(llm, fixed, SERVER, CONTEXT))
        await collect(run_turn(llm, make_profile(), SERVER, CONTEXT, TurnOptions(seed=7)))
    seeds = [body["options"]["seed"] for body in server.chat_bodies]
    assert len(set(seeds[:3])) == 3  # three turns, three seeds (a clash is a 1 in 10^9 chance)
    assert seeds[3:] == [42, 42, 7]
