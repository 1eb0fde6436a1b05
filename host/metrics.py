"""Prometheus metrics: turn latency by stage, events handled, errors, queue depths, bridge refusals and drops. Every
`npc-host run` process serves them at /metrics on its admin web server (host/admin/health_routes.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter, Gauge, Histogram

from host.bus import Bus, BusError

log = logging.getLogger(__name__)

# Buckets sized for voice latency: most stages land between 20 ms and 3 s.
_LATENCY_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

TURN_STAGE_SECONDS = Histogram(
    "npc_host_turn_stage_seconds",
    "Time from the start of a turn to each stage (stt, first_token, first_sentence, first_audio, total)",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
VOICE_STAGE_SECONDS = Histogram(
    "npc_host_voice_stage_seconds",
    "Time from the end of a player's speech to each milestone of the NPC's spoken answer: endpoint (the bridge ended "
    "the utterance), stt (transcript), first_token, first_sentence, first_audio (its first frame left the bridge)",
    ["server", "npc", "stage"],
    buckets=_LATENCY_BUCKETS,
)
SPECULATIVE_STT_TOTAL = Counter(
    "npc_host_speculative_stt_total", "Utterances transcribed: from the speculation (reused) or afresh", ["outcome"]
)
SPECULATIVE_TURNS_TOTAL = Counter(
    "npc_host_speculative_turns_total",
    "Persona turns started on a speculative transcript: committed (the final line was the same) or discarded",
    ["server", "npc", "outcome"],
)
UTTERANCES_ENDED_TOTAL = Counter(
    "npc_host_utterances_ended_total",
    "Utterances the bridge ended within some NPC's hearing: after the shorter silence of a line heard as finished "
    "(finished), after vad.end_silence_ms (silence), or at the length cap (cut)",
    ["server", "end"],
)
TURNS_TOTAL = Counter("npc_host_turns_total", "NPC turns finished", ["server", "npc", "outcome"])
EVENTS_HANDLED = Counter("npc_host_events_handled_total", "Events handled by this process", ["type"])
ERRORS_TOTAL = Counter("npc_host_errors_total", "Errors by machine code", ["code"])
BRIDGE_FRAMES_DROPPED = Counter(
    "npc_host_bridge_frames_dropped_total",
    "Microphone frames dropped by the bridge (backlog: the VAD fell behind)",
    ["reason"],
)
BRIDGE_REFUSED = Counter("npc_host_bridge_refused_total", "Bridge connections refused at the door", ["reason"])
MEMORY_RESIDENT_BYTES = Gauge("npc_host_memory_resident_bytes", "Resident memory of this process (read once a second)")
MEMORY_CEILING_BYTES = Gauge(
    "npc_host_memory_ceiling_bytes", "Resident memory above which new connections, players and voice pages are refused"
)
MEMORY_REFUSED = Counter(
    "npc_host_memory_refused_total",
    "New connections, players and voice pages refused because the process was above its memory ceiling",
    ["what"],
)
QUEUE_DEPTH = Gauge("npc_host_queue_depth", "Pending entries per stream and group", ["stream", "group"])
NPC_TURN_SECONDS = Histogram(
    "npc_host_npc_turn_seconds",
    "Whole turn time per NPC (the total stage)",
    ["server", "npc"],
    buckets=_LATENCY_BUCKETS,
)
MODEL_LOAD_SECONDS = Gauge("npc_host_model_load_seconds", "How long the last load of a model took", ["kind", "model"])
RCON_SECONDS = Histogram(
    "npc_host_rcon_seconds",
    "RCON command round trips",
    ["address"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0),
)
RCON_RECONNECTS = Counter(
    "npc_host_rcon_reconnects_total", "RCON connections made again after one was lost", ["address"]
)


def observe_turn(timings_ms: dict[str, float], *, server: str | None = None, npc: str | None = None) -> None:
    for stage, ms in timings_ms.items():
        TURN_STAGE_SECONDS.labels(stage=stage).observe(ms / 1000.0)
    if server is not None and npc is not None and "total" in timings_ms:
        NPC_TURN_SECONDS.labels(server=server, npc=npc).observe(timings_ms["total"] / 1000.0)


def observe_voice_stage(server: str, npc: str, stage: str, speech_end_ts: float, at: float) -> None:
    observe_voice_stage_ms(server, npc, stage, (at - speech_end_ts) * 1000.0)


def observe_voice_stage_ms(server: str, npc: str, stage: str, ms: float) -> None:
    VOICE_STAGE_SECONDS.labels(server=server, npc=npc, stage=stage).observe(max(ms, 0.0) / 1000.0)


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
