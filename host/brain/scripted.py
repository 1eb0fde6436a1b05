"""A line an operator puts in an NPC's mouth: `NpcControl(action="say", text=...)`, from `!npc say bram Last call!`
in the game or "say as NPC" on the admin page. One path for both: the brain turns it into the same events as a
model's answer (`NpcSentence`s, then `NpcTurnEnded`), so the gateway shows it in chat, the speech role speaks it with
the NPC's voice and the bridge plays it, exactly as it would a reply. Tags work as in replies (`[happy] Last call!`).

Ids are derived from the control event's id, so a redelivered command records and announces nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from host.brain.sentences import SentenceSplitter
from host.events import Event, NpcControl, NpcSentence, NpcTurnEnded
from host.store import Store, TurnRecord
from host.transcript.book import TranscriptBook
from host.transcript.from_events import turn_ended_line

_SAY_NAMESPACE = uuid.UUID("0b7f5a3e-6c1d-4f0a-8a51-93d2e7c4b6f1")

Publish = Callable[[Event], Awaitable[None]]


def say_events(control: NpcControl) -> tuple[list[NpcSentence], NpcTurnEnded]:
    """The sentences and the end of the turn that performs an operator's `say`."""
    if control.action != "say" or not control.text:
        raise ValueError("say_events needs an NpcControl 'say' with text")
    turn_id = uuid.uuid5(_SAY_NAMESPACE, f"{control.server}/{control.id}").hex
    splitter = SentenceSplitter()
    parts = [*splitter.feed(control.text), *splitter.flush()]
    sentences = [
        NpcSentence(
            id=uuid.uuid5(_SAY_NAMESPACE, f"{turn_id}/{index}").hex,
            server=control.server,
            npc=control.npc,
            player=control.author,
            turn_id=turn_id,
            index=index,
            text=part.text,
            emotion=part.emotion,
        )
        for index, part in enumerate(parts)
    ]
    ended = NpcTurnEnded(
        id=uuid.uuid5(_SAY_NAMESPACE, f"{turn_id}/ended").hex,
        server=control.server,
        npc=control.npc,
        player=control.author,
        turn_id=turn_id,
        cause_id=control.id,
        reply=" ".join(sentence.text for sentence in sentences),
    )
    return sentences, ended


async def perform_say(control: NpcControl, store: Store, transcripts: TranscriptBook, publish: Publish) -> None:
    """Record the line as the NPC's (database, transcript), then announce it for chat and voice. A line that the game
    then fails to show is cut from the record like any turn (`NpcTurnCut`)."""
    sentences, ended = say_events(control)
    if not sentences:
        return  # only tags: nothing to say
    emotion = next((sentence.emotion for sentence in sentences if sentence.emotion), None)
    created = await store.conversations.record_turn(
        TurnRecord(
            server=control.server,
            npc=control.npc,
            player=control.author,
            cause_id=control.id,
            turn_id=ended.turn_id,
            source="admin",
            player_text="",
            npc_reply=ended.reply,
            emotion=emotion,
        )
    )
    if created:
        await transcripts.append(control.server, turn_ended_line(ended, emotion))
    for sentence in sentences:
        await publish(sentence)
    await publish(ended)
