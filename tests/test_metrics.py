"""Queue depth on /metrics: pending entries per stream and group, kept current through a hub outage."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from pydantic import SecretStr

from host import metrics
from host.bus import BusUnavailableError, MemoryBus
from host.bus.reports import StreamInfo
from host.events import Event
from integrations.minecraft.rcon import RconClient
from tests.bus_support import TEST_BUS_SETTINGS, said, wait_until
from tests.doubles.rcon_server import RconTestServer


class HubAwayOnce(MemoryBus):
    """The in-process hub, except that its first status read fails as a Redis outage does."""

    def __init__(self) -> None:
        super().__init__(TEST_BUS_SETTINGS)
        self.reads = 0

    async def stream_info(self, stream: str) -> StreamInfo:
        self.reads += 1
        if self.reads == 1:
            raise BusUnavailableError("hub away")
        return await super().stream_info(stream)


def _depth(stream: str, group: str) -> float | None:
    return REGISTRY.get_sample_value("npc_host_queue_depth", {"stream": stream, "group": group})


async def test_queue_depth_shows_pending_entries_after_the_hub_was_away() -> None:
    bus = HubAwayOnce()
    stream = "test-metrics:said"
    release = asyncio.Event()

    async def slow_handler(_event: Event) -> None:
        await release.wait()

    await bus.publish_many(stream, [said("one"), said("two"), said("three")])
    stop_consumer, stop_watch = asyncio.Event(), asyncio.Event()
    consumer = asyncio.create_task(bus.consume(stream, "brain", "c1", slow_handler, stop=stop_consumer))
    watcher = asyncio.create_task(metrics.watch_queues(bus, [stream], stop_watch, interval_s=0.01))
    try:
        await wait_until(lambda: _depth(stream, "brain") == 3, "the gauge to show three pending entries")
        assert bus.reads > 1
        assert not watcher.done()
    finally:
        stop_watch.set()
        stop_consumer.set()
        release.set()
        await asyncio.gather(watcher, consumer)
        await bus.aclose()


async def test_rcon_round_trips_and_reconnects_reach_the_metrics() -> None:
    async with RconTestServer("pw") as server:
        client = RconClient("127.0.0.1", server.port, SecretStr("pw"), backoff_initial_s=0.01)
        address = client.address

        def sample(name: str) -> float:
            return REGISTRY.get_sample_value(name, {"address": address}) or 0.0

        # Counted from here: an earlier test's RCON server may have had the same port, so the same address label.
        before = {name: sample(name) for name in ("npc_host_rcon_seconds_count", "npc_host_rcon_reconnects_total")}

        def added(name: str) -> float:
            return sample(name) - before[name]

        async with client:
            await client.command("list")
            assert added("npc_host_rcon_seconds_count") == 1
            assert added("npc_host_rcon_reconnects_total") == 0
            server.disconnect_all()
            await wait_until(lambda: not client._is_open(), "the client to see the dropped connection")
            await client.command("list")
        assert added("npc_host_rcon_seconds_count") == 2
        assert added("npc_host_rcon_reconnects_total") == 1
