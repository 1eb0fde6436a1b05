"""Prometheus metrics: turn latency by stage, events handled, errors, queue depths. Served by `npc-host run`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from host.bus import Bus, BusError
from host.errors import ConfigError

log = logging.getLogger(__name__)

# Buckets sized for voice latency: most stages land between 20 ms and 3 s.
_LATENCY_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

TURN_STAGE_SECONDS = Histogram(
    "npc_host_turn_stage_seconds",
    "Time from the start of a turn to each stage (stt, first_token, first_sentence, first_audio, total)",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
TURNS_TOTAL = Counter("npc_host_turns_total", "NPC turns finished", ["server", "npc", "outcome"])
EVENTS_HANDLED = Counter("npc_host_events_handled_total", "Events handled by this process", ["type"])
ERRORS_TOTAL = Counter("npc_host_errors_total", "Errors by machine code", ["code"])
QUEUE_DEPTH = Gauge("npc_host_queue_depth", "Pending entries per stream and group", ["stream", "group"])


def observe_turn(timings_ms: dict[str, float]) -> None:
    for stage, ms in timings_ms.items():
        TURN_STAGE_SECONDS.labels(stage=stage).observe(ms / 1000.0)


def serve(port: int, host: str) -> None:
    """Serve /metrics from a daemon thread (prometheus_client's own server)."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:  # a port in use or an address not on this machine: a setting to fix, not a crash
        raise ConfigError(
            f"cannot serve /metrics on {host}:{port} ({exc.strerror or exc}); set NPC_HOST_METRICS_PORT to a free port"
        ) from exc


async def watch_queues(bus: Bus, streams: list[str], stop: asyncio.Event, interval_s: float = 5.0) -> None:
    """Keep `npc_host_queue_depth` current: pending entries per stream and consumer group.

    A hub that is briefly away skips a reading; ending the watch instead would freeze the gauge at its last value.
    """
    while not stop.is_set():
        for stream in streams:
            try:
                info = await bus.stream_info(stream)
            except BusError as exc:
                ERRORS_TOTAL.labels(code=exc.code).inc()
                log.warning("queue depth of %s not read: %s", stream, exc)
                continue
            for group in info.groups:
                QUEUE_DEPTH.labels(stream=stream, group=group.name).set(group.pending)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


ADVISOR_PASSES = Counter(
    "npc_host_advisor_passes_total", "Advisor passes by outcome (ok, failed)", ["server", "outcome"]
)
ADVISOR_FAILURES = Counter("npc_host_advisor_failures_total", "Failed advisor passes by reason", ["server", "reason"])
ADVISOR_TOKENS = Counter(
    "npc_host_advisor_tokens_total",
    "Tokens the advisor spent, by stage and direction",
    ["server", "stage", "direction"],
)
ADVISOR_CACHE_HITS = Counter("npc_host_advisor_digest_cache_hits_total", "Digests reused from the cache", ["server"])
ADVISOR_PASS_SECONDS = Histogram(
    "npc_host_advisor_pass_seconds",
    "Wall time of an advisor pass",
    ["server"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600),
)
ADVISOR_RECOMMENDATIONS = Counter("npc_host_advisor_recommendations_total", "Recommendations stored", ["server"])
