"""The in-process hub's memory: audio every group has handled is not kept beyond its budget; audio a group still
needs is never dropped for its size."""

from __future__ import annotations

from host.bus import MemoryBus, StreamKind, stream_name
from host.events import NpcAudio
from tests.bus_support import TEST_BUS_SETTINGS, Collector, consuming, poll_until, said, wait_until

AUDIO = stream_name("test", StreamKind.AUDIO)
CHUNK = 100_000  # bytes: about two seconds of an NPC's voice at 22 kHz
BUDGET = 1_000_000


def chunk(index: int) -> NpcAudio:
    return NpcAudio(server="test", npc="innkeeper", turn_id="t1", index=index, audio=bytes(CHUNK), sample_rate=22050)


def hub() -> MemoryBus:
    return MemoryBus(TEST_BUS_SETTINGS.model_copy(update={"memory_audio_bytes": BUDGET}))


async def group_exists(bus: MemoryBus, stream: str) -> None:
    """A consumer creates its group once its loop runs; audio published before that goes to nobody."""

    async def check() -> bool:
        return bool((await bus.stream_info(stream)).groups)

    await poll_until(check, "the consumer group exists")


async def test_handled_audio_is_kept_only_up_to_the_budget() -> None:
    bus = hub()
    got = Collector()
    async with consuming(bus, AUDIO, "gateway", "g1", got):
        await group_exists(bus, AUDIO)
        for index in range(100):  # 10 MB of audio through the stream
            await bus.publish(AUDIO, chunk(index))
        await wait_until(lambda: len(got.events) == 100, "all 100 chunks handled")
        await bus.publish(AUDIO, chunk(100))  # a publish drops what every group has handled beyond the budget
        await wait_until(lambda: len(got.events) == 101, "the last chunk handled")
    info = await bus.stream_info(AUDIO)
    assert info.length <= BUDGET // CHUNK + 1
    await bus.aclose()


async def test_audio_a_group_has_not_handled_is_never_dropped() -> None:
    bus = hub()
    got = Collector()
    async with consuming(bus, AUDIO, "gateway", "g1", got):
        await group_exists(bus, AUDIO)  # then its consumer is away while 5 MB arrive
    for index in range(50):
        await bus.publish(AUDIO, chunk(index))
    async with consuming(bus, AUDIO, "gateway", "g1", got):
        await wait_until(lambda: len(got.events) == 50, "all 50 chunks handled after the consumer came back")
    assert [event.index for event in got.events if isinstance(event, NpcAudio)] == list(range(50))
    await bus.aclose()


async def test_entries_without_audio_keep_their_history() -> None:
    bus = hub()
    stream = stream_name("test", StreamKind.SAID)
    got = Collector()
    async with consuming(bus, stream, "brain", "b1", got):
        await group_exists(bus, stream)
        await bus.publish_many(stream, [said(f"line {n}") for n in range(200)])
        await wait_until(lambda: len(got.events) == 200, "all lines handled")
    assert (await bus.stream_info(stream)).length == 200  # a group created later still sees them
    await bus.aclose()
