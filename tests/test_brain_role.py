"""The brain role in one process, on the in-process hub and on real Redis: who answers, what the hub, the database
and the transcript see, redelivery, notes from the transcript, barge-in, pause and resume.

The example village: Bram stands behind his bar at (4.5, 64, -3.5) and hears 10 blocks; nobody else hears a player at
the bar. The LLM is the Ollama wire double (a real HTTP server on 127.0.0.1) through the real Ollama backend.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import pytest

from host.brain.engine import StartedTurn
from host.brain.turn import TurnSentence
from host.bus import Bus, BusUnavailableError, StreamKind, stream_for, stream_name
from host.config import BusSettings, LLMSettings, Settings
from host.events import (
    MAX_PLAYER_TEXT_CHARS,
    Event,
    NpcControl,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerLeft,
    PlayerSaid,
    PlayerSaidTentative,
    Position,
)
from host.llm.factory import close_all
from host.roles.brain import GROUP, BrainRole
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.store import ConversationKey
from host.transcript.lines import NoteLine, SpokenLine, TranscriptLine
from host.transcript.reader import read_transcript
from host.transcript.writer import now_utc
from tests.bus_support import Collector, consuming, poll_until, wait_until
from tests.doubles.ollama_server import OllamaWireServer

SERVER = "example"
AT_THE_BAR = Position(x=4.5, y=64.0, z=-2.5)  # one block from Bram: only he hears it
FAR_AWAY = Position(x=300.0, y=64.0, z=300.0)  # out of every NPC's hearing range
REPLY = "[happy] Aye, one room left upstairs. Three emeralds a night, friend!"
REPLY_SENTENCES = ["Aye, one room left upstairs.", "Three emeralds a night, friend!"]


class Hub(NamedTuple):
    redis_url: str | None
    bus: BusSettings


@pytest.fixture(params=["memory", "redis"])
def hub(request: pytest.FixtureRequest) -> Hub:
    if request.param == "memory":
        return Hub(None, BusSettings())
    return Hub(request.getfixturevalue("redis_url"), BusSettings(key_prefix=request.getfixturevalue("redis_prefix")))


@dataclass
class Village:
    """A running brain role on the example village, with an observer of everything published on the turns stream."""

    role: BrainRole
    ollama: OllamaWireServer
    turns: Collector
    transcripts_dir: Path

    @property
    def bus(self) -> Bus:
        return self.role.services.bus

    async def publish(self, event: Event) -> str:
        return await self.bus.publish(stream_for(event), event)

    async def say(self, text: str) -> PlayerSaid:
        said = line(text)
        await self.publish(said)
        return said

    async def turn_ended(self, said: PlayerSaid) -> NpcTurnEnded:
        await wait_until(lambda: bool(self.ended(said)), f"the turn answering {said.text!r} ended")
        (ended,) = self.ended(said)
        return ended

    def ended(self, said: PlayerSaid) -> list[NpcTurnEnded]:
        return [e for e in self.turns.events if isinstance(e, NpcTurnEnded) and e.cause_id == said.id]

    def of_turn(self, turn_id: str) -> list[Event]:
        return [e for e in self.turns.events if getattr(e, "turn_id", None) == turn_id]

    async def handled(self, entry_id: str, kind: StreamKind = StreamKind.SAID) -> None:
        """Until the brain group has been handed the entry `entry_id` and acked everything it was handed."""
        stream = stream_name(SERVER, kind)

        async def done() -> bool:
            info = await self.bus.stream_info(stream)
            group = next((g for g in info.groups if g.name == GROUP), None)
            return group is not None and group.pending == 0 and _id(group.last_delivered_id) >= _id(entry_id)

        await poll_until(done, f"the brain handled entry {entry_id}")

    async def transcript(self) -> list[TranscriptLine]:
        lines: list[TranscriptLine] = []
        for path in sorted((self.transcripts_dir / SERVER).glob("*.log")):
            parsed = await read_transcript(path)
            assert parsed.errors == []
            lines += [parsed_line.line for parsed_line in parsed.lines]
        return lines

    async def npc_lines(self) -> list[SpokenLine]:
        return [line for line in await self.transcript() if isinstance(line, SpokenLine) and line.source == "npc"]

    async def turns_stored(self) -> int:
        return sum((await self.role.services.store.conversations.turn_counts(SERVER)).values())


def line(text: str, position: Position = AT_THE_BAR) -> PlayerSaid:
    return PlayerSaid(server=SERVER, player="Alex", text=text, position=position)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


OpenVillage = Callable[..., AbstractAsyncContextManager[Village]]


@pytest.fixture
def open_village(hub: Hub, tmp_path: Path, repo_root: Path) -> OpenVillage:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / SERVER)

    @asynccontextmanager
    async def opened(replies: Sequence[str], chunk_delay_s: float = 0.0) -> AsyncIterator[Village]:
        async with OllamaWireServer(replies=replies, chunk_delay_s=chunk_delay_s) as ollama:
            settings = Settings(
                profiles_dir=tmp_path / "profiles",
                data_dir=tmp_path / "data",
                transcripts_dir=tmp_path / "transcripts",
                redis_url=hub.redis_url,
                bus=hub.bus,
                llm=LLMSettings(backend="ollama", ollama_url=ollama.url, retries=0),
            )
            services = await HostServices.open(settings, watch_profiles=False)
            role = BrainRole(services, make_brain(services))
            turns = Collector()
            try:
                async with (
                    consuming(services.bus, stream_name(SERVER, StreamKind.TURNS), "observer", "o1", turns),
                    consuming_role(role),
                ):
                    yield Village(role, ollama, turns, settings.transcripts_dir)
            finally:
                await services.aclose()
                await close_all()

    return opened


@asynccontextmanager
async def consuming_role(role: BrainRole) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(role.run(stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task


async def test_a_line_near_bram_gets_exactly_one_reply(open_village: OpenVillage) -> None:
    async with open_village([REPLY]) as village:
        said = await village.say("Any rooms free tonight?")
        ended = await village.turn_ended(said)

        events = village.of_turn(ended.turn_id)
        assert [type(e) for e in events] == [NpcTurnStarted, NpcSentence, NpcSentence, NpcTurnEnded]
        started, first, second = events[0], events[1], events[2]
        assert isinstance(started, NpcTurnStarted) and started.cause_id == said.id and started.npc == "bram"
        assert isinstance(first, NpcSentence) and isinstance(second, NpcSentence)
        assert [first.text, second.text] == REPLY_SENTENCES
        assert first.emotion == "happy"
        assert (ended.npc, ended.player, ended.interrupted) == ("bram", "Alex", False)
        assert ended.reply == " ".join(REPLY_SENTENCES)

        stored = await village.role.services.store.conversations.turn_by_cause(f"{said.id}:bram")
        assert stored is not None
        assert (stored.player_text, stored.npc_reply, stored.turn_id) == (said.text, ended.reply, ended.turn_id)
        assert await village.turns_stored() == 1

        player_line, npc_line = await village.transcript()
        assert isinstance(player_line, SpokenLine) and isinstance(npc_line, SpokenLine)
        assert (player_line.source, player_line.speaker, player_line.addressee) == ("chat", "Alex", "bram")
        assert player_line.text == said.text
        assert (npc_line.source, npc_line.speaker, npc_line.addressee) == ("npc", "bram", "Alex")
        assert npc_line.text == ended.reply
        assert npc_line.tags["turn"] == ended.turn_id
        assert npc_line.tags["emotion"] == "happy"


async def test_a_line_far_from_every_npc_gets_no_reply(open_village: OpenVillage) -> None:
    async with open_village([REPLY]) as village:
        await village.handled(await village.publish(line("Hello?", FAR_AWAY)))

        assert village.turns.events == []
        assert village.ollama.chat_bodies == []
        assert await village.turns_stored() == 0
        assert await village.transcript() == []


async def test_a_player_who_left_is_no_longer_answered_by_their_last_partner(open_village: OpenVillage) -> None:
    """A line without a position (terminal chat) is answered only by the player's last partner: after the player
    leaves, what the brain kept about them is gone, not only after the ten-minute idle expiry."""
    async with open_village([REPLY, "Aye, still here."]) as village:
        await village.turn_ended(await village.say("Any rooms free tonight?"))
        nowhere = PlayerSaid(server=SERVER, player="Alex", text="And breakfast?")
        await village.publish(nowhere)
        assert (await village.turn_ended(nowhere)).npc == "bram"  # the last partner answers

        await village.handled(await village.publish(PlayerLeft(server=SERVER, player="Alex")), StreamKind.CONTROL)
        await village.handled(await village.publish(PlayerSaid(server=SERVER, player="Alex", text="Hello?")))
        assert len(village.ollama.chat_bodies) == 2  # nobody answered the third line
        assert len([e for e in village.turns.events if isinstance(e, NpcTurnStarted)]) == 2


async def test_the_same_line_delivered_twice_is_answered_once(open_village: OpenVillage) -> None:
    async with open_village([REPLY, "A second answer nobody should hear."]) as village:
        said = await village.say("Any rooms free tonight?")
        await village.handled(await village.publish(said))  # the same event again, as the hub may deliver it

        await village.turn_ended(said)
        assert len([e for e in village.turns.events if isinstance(e, NpcTurnStarted)]) == 1
        assert len(village.ollama.chat_bodies) == 1
        assert await village.turns_stored() == 1
        assert len(await village.npc_lines()) == 1


async def test_a_redelivery_after_a_crash_before_the_transcript_repairs_it_without_answering_again(
    open_village: OpenVillage,
) -> None:
    async with open_village([REPLY, "A second answer nobody should hear."]) as village:
        said = await village.say("Any rooms free tonight?")
        ended = await village.turn_ended(said)
        # The process died after storing the turn and before writing its transcript lines: the file lacks them.
        (log_file,) = (village.transcripts_dir / SERVER).glob("*.log")
        log_file.write_text("")

        # The hub did not get the ack either, so the line comes again; the handler sees it as a redelivery.
        await village.role.on_said(said)

        assert len(village.ollama.chat_bodies) == 1
        assert await village.turns_stored() == 1
        (npc_line,) = await village.npc_lines()
        assert (npc_line.tags["turn"], npc_line.text) == (ended.turn_id, ended.reply)
        assert len(village.ended(said)) == 1


async def test_a_turn_whose_end_was_never_announced_is_announced_when_the_line_comes_again(
    open_village: OpenVillage, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_village([REPLY, "A second answer nobody should hear."]) as village:
        publish = village.role.publish
        lost: list[NpcTurnEnded] = []

        async def hub_gone_at_the_end(event: Event) -> None:
            if isinstance(event, NpcTurnEnded) and not lost:
                lost.append(event)  # stored and written, then the hub went away before the end was announced
                raise BusUnavailableError("Redis at 127.0.0.1:6379 unreachable for 30s")
            await publish(event)

        monkeypatch.setattr(village.role, "publish", hub_gone_at_the_end)
        said = await village.say("Any rooms free tonight?")
        ended = await village.turn_ended(said)

        assert (ended.id, ended.turn_id, ended.reply) == (lost[0].id, lost[0].turn_id, lost[0].reply)
        assert len(village.ollama.chat_bodies) == 1
        assert await village.turns_stored() == 1
        assert len(await village.npc_lines()) == 1


async def test_a_note_typed_into_the_transcript_reaches_brams_next_prompt(open_village: OpenVillage) -> None:
    async with open_village([REPLY]) as village:
        note = "Alex still owes two emeralds for the stew."
        folder = village.transcripts_dir / SERVER
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{_today()}.log").open("a") as file:
            file.write(f"NOTE @bram: {note}\n")

        async def noted() -> bool:
            return note in [n.text for n in await village.role.brain.memory.notes(SERVER, "bram")]

        await poll_until(noted, "the note reached Bram's memory")
        await village.turn_ended(await village.say("Anything I should know?"))

        (body,) = village.ollama.chat_bodies
        prompt = "\n".join(message["content"] for message in body["messages"])
        assert note in prompt
        assert any(isinstance(line, NoteLine) and line.text == note for line in await village.transcript())


async def test_barge_in_stops_the_reply_and_records_only_what_was_said(open_village: OpenVillage) -> None:
    long_tail = " ".join(["and then the roof of the old mine came down on all of us"] * 6) + "."
    async with open_village([f"Well now, friend. Let me tell you {long_tail}"], chunk_delay_s=0.2) as village:
        said = await village.say("Tell me about the mine.")

        def first_sentence_out() -> bool:
            return any(isinstance(e, NpcSentence) for e in village.turns.events)

        await wait_until(first_sentence_out, "Bram's first sentence was published")
        (started,) = [e for e in village.turns.events if isinstance(e, NpcTurnStarted)]
        # Alex speaks over Bram: the bridge cuts the turn (host/roles/bridge.py) after he was heard saying that much.
        heard = "Well now, friend."
        cut = NpcTurnCut(
            server=SERVER, npc="bram", player="Alex", turn_id=started.turn_id, heard=heard, sentences_heard=1
        )
        await village.publish(cut)
        ended = await village.turn_ended(said)

        spoken = [e.text for e in village.of_turn(ended.turn_id) if isinstance(e, NpcSentence)]
        assert spoken == ["Well now, friend."]
        assert ended.interrupted is True
        assert ended.reply == "Well now, friend."
        stored = await village.role.services.store.conversations.turn_by_cause(f"{said.id}:bram")
        assert stored is not None
        assert (stored.npc_reply, stored.interrupted) == ("Well now, friend.", True)
        await poll_until(lambda: _lines_written(village, 2), "the turn and its cut were written")
        turn_line, cut_line = await village.npc_lines()
        assert turn_line.text == cut_line.text == "Well now, friend."
        assert "interrupted" in turn_line.tags and cut_line.tags["heard"] == "1"


async def test_a_reply_cut_off_in_the_players_ears_is_recorded_as_heard(open_village: OpenVillage) -> None:
    """The reply was written in full, then the bridge cut playback after the first sentence (`NpcTurnCut`)."""
    async with open_village([REPLY]) as village:
        said = await village.say("Any rooms free tonight?")
        ended = await village.turn_ended(said)
        assert ended.interrupted is False

        await village.publish(
            NpcTurnCut(
                server=SERVER,
                npc="bram",
                player="Alex",
                turn_id=ended.turn_id,
                heard=REPLY_SENTENCES[0],
                sentences_heard=1,
            )
        )

        async def cut_is_stored() -> bool:
            stored = await village.role.services.store.conversations.turn_by_cause(f"{said.id}:bram")
            return stored is not None and stored.interrupted

        await poll_until(cut_is_stored, "the cut reached the database")
        stored = await village.role.services.store.conversations.turn_by_cause(f"{said.id}:bram")
        assert stored is not None and stored.npc_reply == REPLY_SENTENCES[0]
        # Bram remembers having said only what Alex heard.
        memory = await village.role.brain.memory.conversation(stored_key())
        assert [exchange.npc_reply for exchange in memory.exchanges] == [REPLY_SENTENCES[0]]
        full, cut = await village.npc_lines()
        assert full.text == ended.reply
        assert (cut.text, cut.tags["turn"], cut.tags["heard"]) == (REPLY_SENTENCES[0], ended.turn_id, "1")
        assert "interrupted" in cut.tags


async def _lines_written(village: Village, count: int) -> bool:
    return len(await village.npc_lines()) >= count


def stored_key() -> ConversationKey:
    return ConversationKey(server=SERVER, npc="bram", player="Alex")


async def test_a_tentative_line_that_arrives_after_its_final_line_starts_nothing(open_village: OpenVillage) -> None:
    """The speech role made the tentative line first, but the hub delivered it last (two publishers): it is stale."""
    async with open_village([REPLY, "A second answer nobody should hear."]) as village:
        tentative = PlayerSaidTentative(
            server=SERVER, player="Alex", text="Any rooms free tonight?", utterance_id="u1", position=AT_THE_BAR
        )
        said = await village.say("Any rooms free tonight?")
        await village.turn_ended(said)
        await village.handled(await village.publish(tentative))

        assert len(village.ollama.chat_bodies) == 1
        assert village.role.brain.speculations.of(SERVER, "Alex") is None


async def test_a_pause_after_the_npcs_name_starts_no_speculative_answer(open_village: OpenVillage) -> None:
    """ "Bram," and a pause: the player nearly always goes on with the question, so nothing is written for a word or
    two; a tentative line that asks something does start an answer."""
    async with open_village([REPLY]) as village:
        speculations = village.role.brain.speculations
        for heard in ("Bram.", "Brand.", "Bram, listen"):  # the name as Whisper may hear it on a pause after it
            called = PlayerSaidTentative(
                server=SERVER, player="Alex", text=heard, utterance_id="u1", position=AT_THE_BAR
            )
            await village.handled(await village.publish(called))
            assert speculations.of(SERVER, "Alex") is None and village.ollama.chat_bodies == []
        asking = PlayerSaidTentative(
            server=SERVER, player="Alex", text="Bram, any rooms?", utterance_id="u1", position=AT_THE_BAR
        )
        await village.handled(await village.publish(asking))
        assert speculations.of(SERVER, "Alex") is not None


async def test_a_paused_npc_does_not_answer_until_resumed(open_village: OpenVillage) -> None:
    async with open_village([REPLY]) as village:
        brain = village.role.brain
        await village.publish(_control("pause"))
        await wait_until(lambda: brain.is_paused(SERVER, "bram"), "Bram is paused")

        ignored = line("Any rooms free tonight?")
        await village.handled(await village.publish(ignored))
        assert village.ended(ignored) == []
        assert village.ollama.chat_bodies == []

        await village.publish(_control("resume"))
        await wait_until(lambda: not brain.is_paused(SERVER, "bram"), "Bram is resumed")
        answered = await village.say("Hello? Any rooms?")
        ended = await village.turn_ended(answered)

        assert ended.npc == "bram"
        assert village.ended(ignored) == []
        assert await village.turns_stored() == 1
        controls = [line.tags.get("control") for line in await village.transcript() if isinstance(line, SpokenLine)]
        assert [c for c in controls if c] == ["pause", "resume"]


def _control(action: Literal["pause", "resume"]) -> NpcControl:
    return NpcControl(server=SERVER, npc="bram", action=action, author="Steve")


def _today() -> str:
    return now_utc().date().isoformat()


async def test_a_cancelled_answer_leaves_no_turn_speaking_on(open_village: OpenVillage) -> None:
    long_tail = " ".join(["and the mine went on and on below the hill"] * 6) + "."
    async with open_village([f"Well now, friend. Let me tell you {long_tail}"], chunk_delay_s=0.2) as village:
        spoken: list[str] = []
        first = asyncio.Event()

        async def on_sentence(_turn: StartedTurn, sentence: TurnSentence) -> None:
            spoken.append(sentence.text)
            first.set()

        answering = asyncio.create_task(village.role.brain.answer(line("Tell me about the mine."), "bram", on_sentence))
        await first.wait()
        answering.cancel()  # the host shutting down mid-turn
        with pytest.raises(asyncio.CancelledError):
            await answering

        assert [task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("turn:")] == []
        assert spoken == ["Well now, friend."]


async def test_an_operators_say_is_performed_as_the_npcs_turn_once(open_village: OpenVillage) -> None:
    """`!npc say bram ...` (or the admin page's "say as NPC"): the same sentences and turn end as a reply, so the
    gateway shows it and the speech role voices it; recorded as the NPC's line."""
    async with open_village([]) as village:
        say = NpcControl(server=SERVER, npc="bram", action="say", text="[happy] Last call! Drink up.", author="Steve")
        await village.publish(say)
        await wait_until(
            lambda: any(isinstance(e, NpcTurnEnded) and e.cause_id == say.id for e in village.turns.events),
            "the say turn ended",
        )
        events = [e for e in village.turns.events if getattr(e, "npc", None) == "bram"]
        sentences = [e for e in events if isinstance(e, NpcSentence)]
        assert [(s.text, s.emotion, s.player) for s in sentences[:2]] == [
            ("Last call!", "happy", "Steve"),
            ("Drink up.", None, "Steve"),
        ]
        assert [type(e) for e in events] == [NpcSentence, NpcSentence, NpcTurnEnded]
        assert await village.turns_stored() == 1
        assert village.ollama.chat_bodies == []  # no model involved
        npc_lines = await village.npc_lines()
        assert [(line.speaker, line.addressee, line.text) for line in npc_lines] == [
            ("bram", "Steve", "Last call! Drink up.")
        ]


async def test_a_60000_character_line_is_cut_answered_and_recorded_as_cut(open_village: OpenVillage) -> None:
    # It used to fail the prompt budget six times with tracebacks, get dead-lettered and never reach the transcript.
    async with open_village([REPLY]) as village:
        said = await village.say("Any rooms free tonight? " + "Please " * 10_000)
        assert said.cut and len(said.text) == MAX_PLAYER_TEXT_CHARS
        ended = await village.turn_ended(said)
        assert ended.reply == " ".join(REPLY_SENTENCES)
        player_line, _ = await village.transcript()
        assert isinstance(player_line, SpokenLine) and player_line.speaker == "Alex"
        assert "cut" in player_line.tags and player_line.text.startswith("Any rooms free tonight?")
        assert len(player_line.text) == MAX_PLAYER_TEXT_CHARS
