"""Feeding a pass's answer back: each NPC's advice is stored (the one writer: `SteeringRepo.add_recommendation`),
announced on the hub's advice stream and written to the transcript as an `advisor` line. The NPC's next turn reads
it from the store (`SteeringRepo.active_advice`), so no turn ever waits for the advisor.
"""

from __future__ import annotations

import uuid

from host.advisor.answer import NpcAdvice
from host.bus import Bus
from host.bus.streams import stream_for
from host.events import AdvisorRecommendation
from host.store import AdviceItem, NewRecommendation, Recommendation, Store
from host.transcript.book import TranscriptBook
from host.transcript.lines import SpokenLine
from host.transcript.writer import now_utc

_NAMESPACE = uuid.UUID("0b7c55c4-61a1-4d3e-a2a7-5b0b3f3f5e21")
SPEAKER = "advisor"


def advice_items(advice: NpcAdvice) -> list[AdviceItem]:
    items = [
        AdviceItem(kind="steering", text=i.text, priority=i.priority, lifetime_minutes=i.expires_in_minutes)
        for i in advice.steering
    ]
    items += [
        AdviceItem(kind="fact", text=i.text, priority=i.priority, lifetime_minutes=i.expires_in_minutes)
        for i in advice.facts
    ]
    if advice.mood is not None:
        mood = advice.mood
        items.append(
            AdviceItem(kind="mood", text=mood.text, priority=mood.priority, lifetime_minutes=mood.expires_in_minutes)
        )
    items += [
        AdviceItem(
            kind="warning", text=i.text, priority=i.priority, lifetime_minutes=i.expires_in_minutes, warning=i.kind
        )
        for i in advice.warnings
    ]
    return items


async def feed_back(
    store: Store,
    bus: Bus,
    transcripts: TranscriptBook,
    server: str,
    advice: NpcAdvice,
    *,
    pass_key: str,
    pass_id: int,
    approval: bool,
) -> Recommendation:
    """Store, announce and transcribe one NPC's advice. `pass_key` names the transcript range the pass read: a pass
    re-run over the same range after a crash stores nothing twice."""
    event_id = uuid.uuid5(_NAMESPACE, f"{server}/{pass_key}/{advice.npc}").hex
    new = NewRecommendation.from_items(
        server,
        advice.npc,
        advice_items(advice),
        status="pending" if approval else "active",
        pass_id=pass_id,
        event_id=event_id,
    )
    stored = await store.steering.add_recommendation(new)
    event = AdvisorRecommendation(
        id=event_id,
        server=server,
        npc=advice.npc,
        steering=stored.steering,
        facts=stored.facts,
        mood=stored.mood,
        warnings=stored.warnings,
        recommendation_id=stored.id,
        status="pending" if stored.status == "pending" else "active",
    )
    await bus.publish(stream_for(event), event)
    await transcripts.append(server, advisor_line(stored))
    return stored


def advisor_line(recommendation: Recommendation) -> SpokenLine:
    """`advisor advisor > bram [rec=12 status=active priority=4]: "steer(4): ... | mood(2): wary"`."""
    parts = []
    for item in sorted(recommendation.items, key=lambda item: -item.priority):
        label = f"{item.kind} {item.warning}" if item.warning else item.kind
        parts.append(f"{label}({item.priority}, {item.lifetime_minutes} min): {item.text}")
    return SpokenLine(
        ts=now_utc(),
        source="advisor",
        speaker=SPEAKER,
        addressee=recommendation.npc,
        tags={"rec": str(recommendation.id), "status": recommendation.status, "priority": str(recommendation.priority)},
        text=" | ".join(parts),
    )
