"""One contract, two hubs: everything here must hold for the in-process MemoryBus and for RedisBus on real Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from host.bus import Bus, DeadLetter, Handler, MemoryBus, RedisBus, StreamKind, stream_name
from host.errors import NotReadyError
from host.events import Event, NpcAudio
from tests.bus_support import TEST_BUS_SETTINGS, Collector, consuming, poll_until, said, wait_until

STREAM = stream_name("test", StreamKind.SAID)


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        hub: Bus = MemoryBus(TEST_BUS_SETTINGS)
    else:
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        redis_bus = RedisBus(redis_url, TEST_BUS_SETTINGS.model_copy(update={"key_prefix": prefix}))
        await redis_bus.connect()
        hub = redis_bus
    yield hub
    await hub.aclose()


async def test_a_consumer_gets_what_was_published(bus: Bus) -> None:
    sent = [said("hello"), said("who are you?")]
    for event in sent:
        await bus.publish(STREAM, event)
    got = Collector()
    async with consuming(bus, STREAM, "brain", "brain-1", got):
        await wait_until(lambda: len(got.events) == 2, "both events handled")
    assert got.events == sent
    assert await bus.pending(STREAM, "brain") == []


async def test_every_group_gets_every_event(bus: Bus) -> None:
    brain, admin = Collector(), Collector()
    async with consuming(bus, STREAM, "brain", "b1", brain), consuming(bus, STREAM, "admin", "a1", admin):
        await bus.publish_many(STREAM, [said(f"line {n}") for n in range(20)])
        await wait_until(lambda: len(brain.events) == 20 and len(admin.events) == 20, "both groups got all 20")
    assert brain.texts == admin.texts == [f"line {n}" for n in range(20)]


async def test_consumers_of_one_group_share_the_work_without_duplicates(bus: Bus) -> None:
    handled_by: dict[str, list[str]] = {"w1": [], "w2": []}

    def worker(name: str) -> Handler:
        async def slow_handle(event: Event) -> None:
            handled_by[name].append(event.id)
            await asyncio.sleep(0.002)  # long enough that the other worker reads the next batch meanwhile

        return slow_handle

    sent = [said(f"job {n}") for n in range(100)]
    async with (
        consuming(bus, STREAM, "speech", "w1", worker("w1"), batch=5),
        consuming(bus, STREAM, "speech", "w2", worker("w2"), batch=5),
    ):
        await bus.publish_many(STREAM, sent)
        await wait_until(lambda: sum(map(len, handled_by.values())) >= 100, "all 100 handled")
    everything = handled_by["w1"] + handled_by["w2"]
    assert sorted(everything) == sorted(event.id for event in sent)  # each exactly once
    assert handled_by["w1"] and handled_by["w2"], "one worker did everything"


async def test_a_failed_handler_gets_the_event_again(bus: Bus) -> None:
    failed_once: set[str] = set()

    def fail_first_time(event: Event) -> bool:
        if event.id in failed_once:
            return False
        failed_once.add(event.id)
        return True

    got = Collector(fail=fail_first_time)
    event = said("try again")
    await bus.publish(STREAM, event)
    async with consuming(bus, STREAM, "brain", "b1", got):
        await wait_until(lambda: len(got.events) == 1, "the event succeeded on redelivery")
    assert [e.id for e in got.attempts] == [event.id, event.id]
    assert await bus.pending(STREAM, "brain") == []


async def test_a_handler_not_ready_yet_gets_the_event_again_without_a_warning(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    """An expected wait (a barge-in cut that arrives before its turn is recorded) is retried like a failure, but an
    operator's log shows it as a line of information, not a warning with a traceback."""
    waited: set[str] = set()
    handled: list[Event] = []

    async def not_ready_first(event: Event) -> None:
        if event.id not in waited:
            waited.add(event.id)
            raise NotReadyError(f"{event.id} is not recorded yet")
        handled.append(event)

    event = said("cut before it was recorded")
    await bus.publish(STREAM, event)
    with caplog.at_level(logging.INFO, logger="host.bus.consumer"):
        async with consuming(bus, STREAM, "brain", "b1", not_ready_first):
            await wait_until(lambda: len(handled) == 1, "the event succeeded on redelivery")
    waits = [record for record in caplog.records if "is not recorded yet" in record.getMessage()]
    assert [(record.levelno, record.exc_info) for record in waits] == [(logging.INFO, None)]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_redelivered_event_id_is_not_handled_twice(bus: Bus) -> None:
    event = said("only once")
    await bus.publish(STREAM, event)
    await bus.publish(STREAM, event)  # e.g. a producer retried after a lost reply
    after = said("after")
    await bus.publish(STREAM, after)
    got = Collector()
    async with consuming(bus, STREAM, "brain", "b1", got):
        await wait_until(lambda: after in got.events, "the later event handled")
    assert got.events == [event, after]
    assert await bus.pending(STREAM, "brain") == []


async def test_audio_bytes_arrive_byte_exact(bus: Bus) -> None:
    pcm = bytes(range(256)) * 64 + b"\x00\xff\x00"
    audio = NpcAudio(server="test", npc="innkeeper", turn_id="t1", index=0, audio=pcm, sample_rate=22050)
    stream = stream_name("test", StreamKind.AUDIO)
    await bus.publish(stream, audio)
    got = Collector()
    async with consuming(bus, stream, "gateway", "g1", got):
        await wait_until(lambda: len(got.events) == 1, "audio handled")
    received = got.events[0]
    assert isinstance(received, NpcAudio)
    assert received.audio == pcm
    assert received == audio


async def test_order_within_a_stream_is_kept(bus: Bus) -> None:
    first = [said(f"a{n}") for n in range(30)]
    ids = await bus.publish_many(STREAM, first)
    ids += [await bus.publish(STREAM, said(f"b{n}")) for n in range(30)]
    got = Collector()
    async with consuming(bus, STREAM, "brain", "b1", got, batch=7):
        await wait_until(lambda: len(got.events) == 60, "all 60 handled")
    assert got.texts == [f"a{n}" for n in range(30)] + [f"b{n}" for n in range(30)]
    assert len(set(ids)) == 60


async def test_an_event_that_always_fails_is_dead_lettered_and_the_rest_go_on(bus: Bus) -> None:
    poison, fine = said("poison"), said("fine")
    got = Collector(fail=lambda event: event.id == poison.id)
    await bus.publish_many(STREAM, [poison, fine])
    async with consuming(bus, STREAM, "brain", "b1", got):
        await wait_until(lambda: fine in got.events, "the good event handled")
        await wait_until(lambda: len(got.attempts) == 1 + TEST_BUS_SETTINGS.max_deliveries, "poison tried max times")
        dead = await _wait_for_dead_letters(bus, 1)
    assert dead[0].code == "max_deliveries"
    assert "more than max_deliveries=3" in dead[0].reason
    assert "RuntimeError: handler refuses" in dead[0].reason
    assert dead[0].group == "brain"
    assert dead[0].fields["id"] == poison.id.encode()
    assert await bus.pending(STREAM, "brain") == []
    assert (await bus.stream_info(STREAM)).dead_letters == 1
    assert await bus.streams() == [STREAM]  # its dead letters are counted there, not listed as a stream


async def test_entries_of_a_stopped_consumer_go_to_another(bus: Bus) -> None:
    stuck = asyncio.Event()

    async def never_finishes(event: Event) -> None:
        stuck.set()
        await asyncio.Event().wait()

    event = said("who takes over?")
    await bus.publish(STREAM, event)
    dying = asyncio.create_task(bus.consume(STREAM, "brain", "dying", never_finishes, block_ms=100))
    await wait_until(stuck.is_set, "the first consumer got the event")
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    assert [p.consumer for p in await bus.pending(STREAM, "brain")] == ["dying"]

    got = Collector()
    async with consuming(bus, STREAM, "brain", "survivor", got):
        await wait_until(lambda: len(got.events) == 1, "the survivor claimed the idle entry")
    assert got.events == [event]
    assert await bus.pending(STREAM, "brain") == []


async def test_the_hub_lists_the_streams_published_to_or_consumed_from(bus: Bus) -> None:
    turns, audio = stream_name("test", StreamKind.TURNS), stream_name("test", StreamKind.AUDIO)
    assert await bus.streams() == []
    await bus.publish(STREAM, said("hello"))
    await bus.stream_info(audio)  # looking at a stream does not make one
    async with consuming(bus, turns, "speech", "s1", Collector()):
        await poll_until(lambda: _lists(bus, turns), "the consumed stream listed")
    assert await bus.streams() == sorted([STREAM, turns])


async def _lists(bus: Bus, stream: str) -> bool:
    return stream in await bus.streams()


async def test_stream_info_shows_groups_consumers_pending_and_lag(bus: Bus) -> None:
    stuck = asyncio.Event()

    async def hold(event: Event) -> None:
        stuck.set()
        await asyncio.Event().wait()

    await bus.publish_many(STREAM, [said("one"), said("two"), said("three")])
    holder = asyncio.create_task(bus.consume(STREAM, "brain", "holder", hold, batch=1, block_ms=100))
    await wait_until(stuck.is_set, "the holder is inside its handler")
    info = await bus.stream_info(STREAM)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert info.stream == STREAM
    assert info.length == 3
    (group,) = info.groups
    assert group.name == "brain"
    assert group.pending == 1
    assert group.lag == 2
    assert [(c.name, c.pending) for c in group.consumers] == [("holder", 1)]


async def _wait_for_dead_letters(bus: Bus, count: int) -> list[DeadLetter]:
    async def enough() -> bool:
        return len(await bus.dead_letters(STREAM)) >= count

    await poll_until(enough, f"{count} dead letters")
    return await bus.dead_letters(STREAM)


async def test_closing_the_bus_lets_the_running_handler_finish_and_ack(bus: Bus) -> None:
    inside = asyncio.Event()
    finished: list[Event] = []

    async def slow(event: Event) -> None:
        inside.set()
        await asyncio.sleep(0.2)
        finished.append(event)

    event = said("finish me")
    await bus.publish(STREAM, event)
    consumer = asyncio.create_task(bus.consume(STREAM, "brain", "b1", slow, block_ms=100))
    await wait_until(inside.is_set, "the handler started")
    await bus.aclose()
    assert consumer.done()
    await consumer
    assert finished == [event]
    assert await bus.pending(STREAM, "brain") == []
