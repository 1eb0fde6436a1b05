"""RedisBus on the machine's real Redis: dead letters, recovery of pending entries, trimming, reconnect, bad URLs."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as redis

from host.bus import BusConnectionError, RedisBus, StreamKind, make_bus, stream_name
from host.bus.codec import encode
from host.config import BusSettings, Settings
from host.events import Event, NpcAudio
from tests.bus_support import TEST_BUS_SETTINGS, Collector, consuming, poll_until, said, wait_until

STREAM = stream_name("test", StreamKind.SAID)


@pytest_asyncio.fixture(loop_scope="function")
async def raw(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client, to write and read entries the way another (or a broken) process would."""
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def open_bus(redis_url: str, prefix: str, **settings: object) -> RedisBus:
    options = BusSettings.model_validate({**TEST_BUS_SETTINGS.model_dump(), "key_prefix": prefix, **settings})
    bus = RedisBus(redis_url, options, client_name=f"{prefix}bus")
    await bus.connect()
    return bus


async def test_invalid_entries_are_dead_lettered_with_their_reason_and_the_consumer_goes_on(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix)
    key = redis_prefix + STREAM
    good = said("still here")
    newer = {**encode(said("from the future")), b"v": b"2"}
    bad_json = {b"type": b"player_said", b"v": b"1", b"id": b"x1", b"json": b"{not json"}
    unknown = {b"type": b"dragon_roared", b"v": b"1", b"id": b"x2", b"json": b"{}"}
    missing_field = {**encode(said("no text")), b"json": b'{"type":"player_said","server":"test","player":"Alex"}'}
    for fields in (newer, bad_json, unknown, missing_field):
        await raw.xadd(key, fields)  # type: ignore[arg-type]
    await bus.publish(STREAM, good)

    got = Collector()
    async with consuming(bus, STREAM, "brain", "b1", got):
        await wait_until(lambda: good in got.events, "the valid event handled after the invalid ones")
    dead = await bus.dead_letters(STREAM)
    pending = await bus.pending(STREAM, "brain")
    await bus.aclose()

    assert got.events == [good]
    by_code = {letter.code: letter for letter in dead}
    assert set(by_code) == {"event_version", "event_malformed", "event_unknown_type"}
    assert len(dead) == 4
    version = by_code["event_version"]
    assert "'player_said'" in version.reason and "version 2" in version.reason and "version 1" in version.reason
    assert version.fields["v"] == b"2"  # the original fields, untouched
    assert "dragon_roared" in by_code["event_unknown_type"].reason
    malformed = [letter for letter in dead if letter.code == "event_malformed"]
    reasons = " | ".join(letter.reason for letter in malformed)
    assert "JSON" in reasons and "text" in reasons
    assert {letter.group for letter in dead} == {"brain"}
    assert any(letter.fields.get("json") == b"{not json" for letter in dead)
    assert pending == []


async def test_entries_read_by_a_dead_consumer_are_claimed_by_a_live_one(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix, claim_idle_ms=200)
    key = redis_prefix + STREAM
    sent = [said("a"), said("b")]
    await bus.publish_many(STREAM, sent)
    await raw.xgroup_create(key, "brain", id="0")
    # A brain process that read both entries and was killed before acking either.
    await raw.xreadgroup("brain", "brain-dead-host-41", {key: ">"}, count=10)

    got = Collector()
    async with consuming(bus, STREAM, "brain", "brain-live-host-42", got):
        await wait_until(lambda: len(got.events) == 2, "the live consumer claimed both entries")
    assert got.events == sent
    assert await bus.pending(STREAM, "brain") == []
    await bus.aclose()


async def test_departed_consumers_without_pending_entries_are_forgotten(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix, claim_idle_ms=100)
    key = redis_prefix + STREAM
    await raw.xgroup_create(key, "brain", id="0", mkstream=True)
    await raw.xreadgroup("brain", "brain-gone-host-7", {key: ">"}, count=1)  # a process that read nothing and exited

    async def consumer_names() -> set[str]:
        (group,) = (await bus.stream_info(STREAM)).groups
        return {consumer.name for consumer in group.consumers}

    async def only_live_one_left() -> bool:
        return await consumer_names() == {"brain-live"}

    async with consuming(bus, STREAM, "brain", "brain-live", Collector()):
        await poll_until(only_live_one_left, "the departed consumer dropped from the group")
    await bus.aclose()


async def test_a_restarted_consumer_reads_its_own_pending_entries_first(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix, claim_idle_ms=600_000)
    key = redis_prefix + STREAM
    others, mine, fresh = said("read by another live consumer"), said("mine, unacked"), said("new")
    await bus.publish_many(STREAM, [others, mine])
    await raw.xgroup_create(key, "brain", id="0")
    await raw.xreadgroup("brain", "other", {key: ">"}, count=1)
    await raw.xreadgroup("brain", "me", {key: ">"}, count=1)  # then "me" crashed
    await bus.publish(STREAM, fresh)

    got = Collector()
    async with consuming(bus, STREAM, "brain", "me", got):
        await wait_until(lambda: len(got.events) == 2, "own pending and new entry handled")
    assert got.events == [mine, fresh]
    pending = await bus.pending(STREAM, "brain")
    assert [(p.consumer, p.deliveries) for p in pending] == [("other", 1)]  # not idle long enough to be claimed
    await bus.aclose()


async def test_trimming_never_drops_entries_a_group_still_needs(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix, maxlen=100, trim_every=1000)
    key = redis_prefix + STREAM
    await raw.xgroup_create(key, "fast", id="0", mkstream=True)
    await raw.xgroup_create(key, "slow", id="0")
    ids = await bus.publish_many(STREAM, [said(f"n{n}") for n in range(1000)])
    await raw.xreadgroup("fast", "f1", {key: ">"}, count=1000)
    await raw.xack(key, "fast", *[i for n, i in enumerate(ids) if n not in {600, 601}])  # 600, 601 stay pending
    await raw.xreadgroup("slow", "s1", {key: ">"}, count=400)
    await raw.xack(key, "slow", *ids[:400])  # "slow" has not even been handed 400..999 yet

    await bus.publish_many(STREAM, [said(f"m{n}") for n in range(1000)])  # the 1000th publish trims

    entries: list[tuple[bytes, dict[bytes, bytes]]] = await raw.xrange(key)  # type: ignore[assignment]
    remaining = {entry_id.decode() for entry_id, _ in entries}
    assert len(remaining) < 2000, "nothing was trimmed"
    assert set(ids[400:]) <= remaining, "an entry some group still needs was trimmed"
    pending = await bus.pending(STREAM, "fast")
    assert [p.entry_id for p in pending] == [ids[600], ids[601]]
    await bus.aclose()


async def test_audio_streams_keep_far_fewer_handled_entries(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    """Utterances and NPC voices are ~100 KB an entry: kept like chat (100,000), they would fill Redis up."""
    bus = await open_bus(redis_url, redis_prefix, maxlen=100_000, maxlen_audio=100)
    stream = stream_name("test", StreamKind.AUDIO)
    key = redis_prefix + stream
    await raw.xgroup_create(key, "gateway", id="0", mkstream=True)
    chunks = [
        NpcAudio(server="test", npc="innkeeper", turn_id="t", index=n, audio=bytes(64), sample_rate=22050)
        for n in range(1000)
    ]
    for first in range(0, 1000, 50):
        ids = await bus.publish_many(stream, chunks[first : first + 50])
        await raw.xreadgroup("gateway", "g1", {key: ">"}, count=50)
        await raw.xack(key, "gateway", *ids)
    await bus.publish(stream, chunks[0])  # the check after the last handled batch
    length = await raw.xlen(key)
    assert length < 300, f"{length} handled audio entries kept"  # whole internal nodes of ~100 go at once
    await bus.aclose()


async def test_producer_and_consumer_survive_their_connections_being_killed(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix)
    before, after = said("before"), said("after")
    got = Collector()
    async with consuming(bus, STREAM, "brain", "b1", got, block_ms=2000):
        await bus.publish(STREAM, before)
        await wait_until(lambda: got.events == [before], "first event handled")
        killed = await kill_connections(raw, f"{redis_prefix}bus")
        await bus.publish(STREAM, after)  # retried on a new connection
        await wait_until(lambda: len(got.events) == 2, "event after the kill handled")
    assert killed >= 1
    assert got.events == [before, after]
    assert await bus.pending(STREAM, "brain") == []
    await bus.aclose()


async def kill_connections(raw: redis.Redis, name: str) -> int:
    clients = await raw.client_list()
    ours = [client["id"] for client in clients if client.get("name") == name]
    for client_id in ours:
        await raw.client_kill_filter(_id=client_id)
    return len(ours)


async def test_hosts_sharing_redis_list_only_their_own_streams(redis_url: str, redis_prefix: str) -> None:
    # The prefixes are glob patterns' special characters: each must match only itself.
    starred, plain = await open_bus(redis_url, redis_prefix + "[a]*"), await open_bus(redis_url, redis_prefix + "a")
    try:
        await plain.publish(STREAM, said("hello"))
        assert await starred.streams() == []
        await starred.publish(stream_name("other", StreamKind.TURNS), said("hi", server="other"))
        assert await starred.streams() == [stream_name("other", StreamKind.TURNS)]
        assert await plain.streams() == [STREAM]
    finally:
        await starred.aclose()
        await plain.aclose()


async def test_a_wrong_redis_url_fails_fast_in_one_line_without_the_password() -> None:
    settings = Settings(redis_url="redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(BusConnectionError) as caught:
        await make_bus(settings)
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_a_url_that_is_not_redis_is_refused_without_the_password() -> None:
    with pytest.raises(BusConnectionError) as caught:
        RedisBus("http://admin:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(caught.value)
    assert "invalid Redis URL" in str(caught.value)


async def test_make_bus_connects_to_the_configured_redis(redis_url: str, redis_prefix: str) -> None:
    settings = Settings(redis_url=redis_url, bus=BusSettings(key_prefix=redis_prefix))
    bus = await make_bus(settings)
    event: Event = said("via make_bus")
    await bus.publish(STREAM, event)
    assert (await bus.stream_info(STREAM)).length == 1
    await bus.aclose()


class PrivateRedis:
    """A redis-server of this test's own (AOF on, like the deployment), so it can be stopped and restarted."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed (needed to restart a private Redis)"
            if os.environ.get("NPC_HOST_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)  # only reached without NPC_HOST_REQUIRE_SERVICES=1
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self._command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(directory)]
        self._command += ["--appendonly", "yes", "--appendfsync", "always"]
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(*self._command, stdout=asyncio.subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        try:
            await poll_until(lambda: _pings(client), "the private redis-server answers")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


async def _pings(client: redis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except redis.ConnectionError:
        return False


async def test_publish_and_consume_resume_after_redis_restarts(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path)
    await server.start()
    try:
        bus = RedisBus(server.url, TEST_BUS_SETTINGS, client_name="restart-test")
        await bus.connect()
        before, during = said("before the restart"), said("published while Redis was down")
        got = Collector()
        async with consuming(bus, STREAM, "brain", "b1", got):
            await bus.publish(STREAM, before)
            await wait_until(lambda: got.events == [before], "first event handled")
            await server.stop()
            publishing = asyncio.create_task(bus.publish(STREAM, during))
            await asyncio.sleep(0.3)  # let publish and the consumer hit the outage
            assert not publishing.done()
            await server.start()
            await publishing
            await wait_until(lambda: len(got.events) == 2, "the event published during the outage handled")
        assert got.events == [before, during]
        assert await bus.pending(STREAM, "brain") == []
        await bus.aclose()
    finally:
        await server.stop()


async def test_a_consumer_outlives_its_stream_being_deleted(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    bus = await open_bus(redis_url, redis_prefix, claim_idle_ms=50)
    first, second = said("before the stream was deleted"), said("after it")
    got = Collector()
    async with consuming(bus, STREAM, "brain", "b1", got, block_ms=20) as task:
        await bus.publish(STREAM, first)
        await wait_until(lambda: got.events == [first], "first event handled")
        await raw.delete(redis_prefix + STREAM)  # an operator's DEL, or a Redis restarted without persistence
        await asyncio.sleep(0.2)  # several reads and claims against the missing stream
        assert not task.done()
        await bus.publish(STREAM, second)
        await wait_until(lambda: got.events == [first, second], "the event published on the new stream handled")
    await bus.aclose()
