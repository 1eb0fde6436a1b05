"""Events and their wire format: every event round-trips, audio stays raw, bad entries are refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.bus.codec import MalformedEventError, decode, encode
from host.bus.streams import StreamKind, event_stream_kinds, stream_for, stream_name
from host.events import (
    EVENT_TYPES,
    AdminCorrection,
    AdminNote,
    AdvisorRecommendation,
    EntityPosition,
    Event,
    EventVersionError,
    NpcActed,
    NpcAudio,
    NpcControl,
    NpcSentence,
    NpcTrial,
    NpcTrialReply,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerLeft,
    PlayerPaused,
    PlayerSaid,
    PlayerSaidTentative,
    PlayerSpeechStarted,
    PlayerUtterance,
    Position,
    Positions,
    UnknownEventTypeError,
)
from host.profiles.loader import load_server

EXAMPLE = load_server(Path(__file__).parent.parent / "npc_profiles" / "example")
HERE = Position(x=1.5, y=64, z=-3, yaw=90)
PCM = bytes(range(256)) * 8

SAMPLES: list[Event] = [
    PlayerUtterance(server="s1", player="Alex", position=HERE, audio=PCM, speech_end_ts=12.5),
    PlayerSaid(server="s1", player="Alex", text="Hello, innkeeper!", source="voice", confidence=0.9),
    PlayerSpeechStarted(server="s1", player="Alex", position=HERE),
    PlayerLeft(server="s1", player="Alex"),
    NpcTurnStarted(server="s1", npc="innkeeper", player="Alex", turn_id="t1", cause_id="c1"),
    NpcSentence(server="s1", npc="innkeeper", player="Alex", turn_id="t1", index=0, text="Welcome.", emotion="warm"),
    NpcAudio(server="s1", npc="innkeeper", turn_id="t1", index=0, audio=PCM, sample_rate=22050),
    NpcTurnEnded(
        server="s1",
        npc="innkeeper",
        player="Alex",
        turn_id="t1",
        cause_id="c1",
        reply="Welcome.",
        timings_ms={"llm": 9},
    ),
    NpcTurnCut(server="s1", npc="innkeeper", player="Alex", turn_id="t1", heard="Welcome.", sentences_heard=1),
    Positions(server="s1", entities=[EntityPosition(name="Alex", x=0, y=64, z=0)]),
    AdminNote(server="s1", npc="innkeeper", author="op", text="Alex owes you 3 coins"),
    AdminCorrection(server="s1", npc="innkeeper", author="op", turn_id="t1", text="We are closed."),
    NpcControl(server="s1", npc="innkeeper", action="move", position=HERE),
    NpcActed(server="s1", npc="innkeeper", player="Alex", action="give 2 bread", outcome="refused", reason="limit"),
    AdvisorRecommendation(server="s1", npc="innkeeper", steering=["be terse"], facts=["Alex is a miner"]),
    PlayerPaused(server="s1", player="Alex", utterance_id="u1", position=HERE, audio=PCM, speech_end_ts=12.5),
    PlayerSaidTentative(server="s1", player="Alex", text="Any rooms?", utterance_id="u1", speech_end_ts=12.5),
    # A whole loaded profile travels: what the admin checked is what the brain runs.
    NpcTrial(server="s1", profile=EXAMPLE.npcs["bram"], player="Ada", text="Any rooms?", author="ada", deadline_ts=9.0),
    NpcTrialReply(server="s1", trial_id="t9", npc="bram", reply="Aye.", dropped=["As an AI... (assistant)"]),
]


def test_there_is_a_sample_of_every_event_type() -> None:
    assert {type(event) for event in SAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_every_event_round_trips_through_the_wire_format(event: Event) -> None:
    fields = encode(event)
    assert fields[b"type"] == event.type.encode()
    assert fields[b"v"] == b"1"
    assert fields[b"id"] == event.id.encode()
    assert decode(fields) == event


@pytest.mark.parametrize("event", [e for e in SAMPLES if e.BINARY_FIELDS], ids=lambda event: event.type)
def test_audio_travels_as_its_own_raw_field_not_inside_the_json(event: Event) -> None:
    fields = encode(event)
    assert fields[b"audio"] == PCM
    assert "audio" not in json.loads(fields[b"json"])


def test_a_newer_schema_version_is_refused_naming_type_and_versions() -> None:
    fields = {**encode(SAMPLES[1]), b"v": b"2"}
    with pytest.raises(EventVersionError) as caught:
        decode(fields)
    assert (caught.value.type_name, caught.value.got, caught.value.expected) == ("player_said", 2, 1)
    assert str(caught.value) == "event 'player_said' has schema version 2, this host reads version 1"
    assert caught.value.code == "event_version"


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventTypeError, match="'dragon_roared'"):
        decode({b"type": b"dragon_roared", b"v": b"1", b"id": b"x", b"json": b"{}"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({b"json": b"{oops"}, "Invalid JSON"),
        ({b"json": b'{"type":"player_said","server":"s1","player":"Alex"}'}, "text: Field required"),
        ({b"v": b"one"}, "version 'one' is not an integer"),
        ({b"id": b"someone-else"}, "disagree"),
        ({b"type": b"\xff"}, "'type' is not UTF-8"),
    ],
)
def test_malformed_entries_are_refused_with_the_field_at_fault(change: dict[bytes, bytes], message: str) -> None:
    with pytest.raises(MalformedEventError, match=message):
        decode({**encode(SAMPLES[1]), **change})


def test_an_entry_without_a_json_field_is_refused_listing_its_fields() -> None:
    fields = encode(SAMPLES[0])
    del fields[b"json"]
    with pytest.raises(MalformedEventError, match=r"no 'json' field \(fields: audio, id, type, v\)"):
        decode(fields)


def test_every_event_type_has_a_stream() -> None:
    assert set(event_stream_kinds()) == set(EVENT_TYPES.values())
    assert stream_for(SAMPLES[1]) == "npc:s1:said"
    assert stream_for(SAMPLES[2]) == "npc:s1:control"


def test_a_server_name_that_would_break_stream_names_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot name a stream"):
        stream_name("bad:name", StreamKind.SAID)


def test_docs_describe_every_event_and_stream(repo_root: Path) -> None:
    text = (repo_root / "docs" / "events.md").read_text()
    for event_type in EVENT_TYPES:
        assert f"`{event_type}`" in text, f"docs/events.md does not describe {event_type}"
    for kind in StreamKind:
        assert f"npc:{{server}}:{kind.value}" in text, f"docs/events.md does not describe the {kind.value} stream"
