"""Bus benchmark: throughput and publish-to-handle latency for MemoryBus and RedisBus (bounded, < 60 s).

Two runs per hub: `burst` publishes BURST_EVENTS pipelined (chunks of CHUNK) as fast as the consumer takes them;
`paced` publishes one event every millisecond (1,000 events/s) for PACED_SECONDS: the latency a player would see.
MemoryBus runs producer and consumer in this process. For RedisBus the consumer is a separate process, as in a
deployment (the gateway publishes, the brain consumes), so the two do not share one event loop; latency is measured
from each event's `ts` (set just before it is published) to its handler, on the same machine's wall clock.
Aim (issue 3): RedisBus >= 20,000 events/s, p99 <= 5 ms at 1,000 events/s. Redis comes from NPC_HOST_REDIS_URL
(default 127.0.0.1:6379); every key is under a unique prefix and deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from host.bus import Bus, MemoryBus, RedisBus
from host.config import BusSettings
from host.events import Event, PlayerSaid

BURST_EVENTS = 20_000
CHUNK = 500
PACED_RATE = 1_000
PACED_SECONDS = 3.0
TIME_LIMIT_S = 50.0
BURST_STREAM = "npc:bench:burst"
PACED_STREAM = "npc:bench:paced"

Publisher = Callable[[Bus, str], Awaitable[None]]


def _said(n: int) -> Event:
    return PlayerSaid(server="bench", player="Bench", text=f"line {n}")  # ts = now: the latency origin


async def _publish_burst(bus: Bus, stream: str) -> None:
    for start in range(0, BURST_EVENTS, CHUNK):
        await bus.publish_many(stream, [_said(n) for n in range(start, min(start + CHUNK, BURST_EVENTS))])


async def _publish_paced(bus: Bus, stream: str) -> None:
    started = time.perf_counter()
    for n in range(int(PACED_RATE * PACED_SECONDS)):
        delay = started + n / PACED_RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await bus.publish(stream, _said(n))


class _Probe:
    """The consumer side: when each event was handled, relative to when it was created."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.latencies_ms: list[float] = []
        self.first_ts = float("inf")
        self.last_handled = 0.0
        self.done = asyncio.Event()

    async def handle(self, event: Event) -> None:
        now = time.time()
        self.latencies_ms.append((now - event.ts) * 1000)
        self.first_ts = min(self.first_ts, event.ts)
        self.last_handled = now
        if len(self.latencies_ms) >= self.expected:
            self.done.set()

    def summary(self) -> dict[str, float]:
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return {
            "events": len(self.latencies_ms),
            "events_per_s": round(len(self.latencies_ms) / (self.last_handled - self.first_ts)),
            "p50_ms": round(cuts[49], 3),
            "p99_ms": round(cuts[98], 3),
            "max_ms": round(max(self.latencies_ms), 3),
        }


async def _consume(bus: Bus, stream: str, expected: int) -> dict[str, float]:
    probe = _Probe(expected)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(bus.consume(stream, "bench", "bench-1", probe.handle, batch=200, block_ms=500, stop=stop))
        await probe.done.wait()
        stop.set()
    return probe.summary()


async def _wait_for_group(bus: Bus, stream: str) -> None:
    """A stream without groups keeps only its newest entries, so publishing starts once the consumer is in."""
    for _ in range(int(TIME_LIMIT_S * 100)):
        if (await bus.stream_info(stream)).groups:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no consumer group appeared on {stream}")


async def _memory_run(publish: Publisher, stream: str, expected: int) -> dict[str, float]:
    bus = MemoryBus()
    consuming = asyncio.create_task(_consume(bus, stream, expected))
    try:
        await _wait_for_group(bus, stream)
        await publish(bus, stream)
        return await consuming
    finally:
        consuming.cancel()  # a no-op after success; after a failure the consumer must not outlive its bus
        await asyncio.gather(consuming, return_exceptions=True)
        await bus.aclose()


async def _redis_run(url: str, prefix: str, publish: Publisher, stream: str, expected: int) -> dict[str, float]:
    consumer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bus",
        "--consume",
        url,
        prefix,
        stream,
        str(expected),
        stdout=asyncio.subprocess.PIPE,
    )
    bus = RedisBus(url, BusSettings(key_prefix=prefix))
    try:
        await _wait_for_group(bus, stream)
        await publish(bus, stream)
        output, _ = await consumer.communicate()
    finally:
        await bus.aclose()
        if consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
    result: dict[str, float] = json.loads(output)
    return result


async def _redis_suite(url: str) -> dict[str, Any]:
    prefix = f"npc-host-bench:{uuid.uuid4().hex[:12]}:"
    probe = RedisBus(url, BusSettings(key_prefix=prefix))
    await probe.connect()  # raises BusConnectionError naming host:port when Redis is absent: the suite fails
    await probe.aclose()
    try:
        burst = await _redis_run(url, prefix, _publish_burst, BURST_STREAM, BURST_EVENTS)
        paced = await _redis_run(url, prefix, _publish_paced, PACED_STREAM, int(PACED_RATE * PACED_SECONDS))
    finally:
        await _delete_keys(url, prefix)
    meets_aim = burst["events_per_s"] >= 20_000 and paced["p99_ms"] <= 5.0
    return {"burst": burst, "paced_1000_per_s": paced, "meets_aim": meets_aim}


async def _delete_keys(url: str, prefix: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


async def run() -> dict[str, Any]:
    url = os.environ.get("NPC_HOST_REDIS_URL", "redis://127.0.0.1:6379/0")
    async with asyncio.timeout(TIME_LIMIT_S):
        memory = {
            "burst": await _memory_run(_publish_burst, BURST_STREAM, BURST_EVENTS),
            "paced_1000_per_s": await _memory_run(_publish_paced, PACED_STREAM, int(PACED_RATE * PACED_SECONDS)),
        }
        return {"memory": memory, "redis": await _redis_suite(url)}


async def _consumer_process(url: str, prefix: str, stream: str, expected: int) -> None:
    bus = RedisBus(url, BusSettings(key_prefix=prefix))
    try:
        async with asyncio.timeout(TIME_LIMIT_S):
            print(json.dumps(await _consume(bus, stream, expected)))
    finally:
        await bus.aclose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--consume"]:
        url, prefix, stream, expected = sys.argv[2:6]
        asyncio.run(_consumer_process(url, prefix, stream, int(expected)))
    else:
        print(json.dumps(asyncio.run(run()), indent=2))
