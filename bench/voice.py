"""Voice benchmark on the path a player meets: from the last sample of a player's question to the first frame of the
NPC's answer at the player's plugin.

The real roles (brain, speech, the gateway's voice bridge) run on the in-process hub with the packaged models
(Silero VAD, faster-whisper tiny.en, SmolLM2 with every persona prefix warmed, Piper) against a copy of the example
village; the recorded questions of `host/demo_assets` are said into the bridge by the reference plugin over a
WebSocket on 127.0.0.1, in real time, without the digital silence they end in, and then the plugin sends nothing
(`host/voice/scene.py`). WARMUP_TURNS turns are played first and not measured; then TURNS turns are measured (fewer
if they take longer than TURNS_BUDGET_S; `turns` says how many were).

- `end_of_speech_to_first_audio_ms`: from the player's last sample to the first frame of the reply at the plugin.
- `stage_ms`: the same span cut into back-to-back stages: `endpoint_wait` (until the bridge publishes the
  utterance), `stt` (until the transcript is published: what speculative STT did not hide in the wait),
  `first_token`, `first_sentence`, `tts` (Piper's first chunk of the first sentence), `delivery` (the hub and the
  bridge's pacer, until the frame reaches the plugin).
- `speculative_turns`: measured turns whose answer was started on the speculative transcript and then committed
  (the final line was the same) or discarded (host/brain/speculation.py).
- `stt_decode_ms`: Whisper's own time per utterance. `prompt_tokens_evaluated`: llama.cpp's count per turn.
- `comma_pause`: the question recorded with a pause at a comma (`comma_pause.wav`), said COMMA_TURNS times:
  `half_answers` counts the turns that answered the first half alone (the host cut the player off).
- `peak_rss_mb`: the process's peak resident memory with all three models loaded.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from typing import Any

from bench.report import summarize
from bench.village import SERVER, example_village
from host import metrics
from host.demo_assets import Recording, load_manifest
from host.events import Position
from host.llm.embedded import EmbeddedLLM
from host.llm.factory import make_llm
from host.roles.services import HostServices
from host.speech.audio import conform, read_wav, without_trailing_silence
from host.voice.scene import SceneTurn, VoiceScene
from host.voice.timings import STAGES
from proximity_audio.protocol import SAMPLE_RATE as BRIDGE_RATE

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

WARMUP_TURNS = 2
TURNS = 12
COMMA_TURNS = 3
TURNS_BUDGET_S = 240.0  # on a crowded machine fewer turns are measured rather than overrun the suite's bound
COMMA_PAUSE = "comma_pause.wav"


def _summary(samples: list[float | None]) -> dict[str, float | int] | None:
    kept = [sample for sample in samples if sample is not None]
    return summarize(kept) if kept else None


async def run() -> dict[str, Any]:
    async with example_village("voice") as services:
        return await _measure(services)


async def _measure(services: HostServices) -> dict[str, Any]:
    npcs = services.registry.npcs(SERVER)
    llm = make_llm(services.settings)
    evaluated: list[float] = []
    manifest = load_manifest()
    questions = [r for r in manifest.recordings if len(r.utterances) == 1 and r.file != COMMA_PAUSE]

    async def say(scene: VoiceScene, recording: Recording) -> list[SceneTurn]:
        npc = npcs[recording.npc or next(iter(npcs))]
        spot = npc.world.position
        position = Position(x=spot.x + 1.5, y=spot.y, z=spot.z, dimension=npc.world.dimension)
        recorded = await asyncio.to_thread(read_wav, recording.path)
        turns = await scene.say(recording.player, position, without_trailing_silence(conform(recorded, BRIDGE_RATE)))
        if isinstance(llm, EmbeddedLLM) and llm.last_stats is not None and turns:
            evaluated.append(llm.last_stats.prompt_tokens_evaluated)
        return turns

    started = time.perf_counter()
    async with VoiceScene(services, SERVER) as scene:
        await scene.ready()
        load_and_warm_s = time.perf_counter() - started
        for turn in range(WARMUP_TURNS):
            await say(scene, questions[turn % len(questions)])
        evaluated.clear()
        speculative_before = _speculative_turns()
        measured: list[SceneTurn] = []
        began = time.perf_counter()
        for turn in range(TURNS):
            if time.perf_counter() - began > TURNS_BUDGET_S:
                break
            measured += await say(scene, questions[turn % len(questions)])
        speculative = {outcome: count - speculative_before[outcome] for outcome, count in _speculative_turns().items()}
        comma = manifest.get(COMMA_PAUSE)
        comma_turns = [await say(scene, comma) for _ in range(COMMA_TURNS)]

    spoken = [turn for turn in measured if turn.timings.spoken and len(turn.audio)]
    return {
        "turns": len(spoken),
        "load_and_warm_s": round(load_and_warm_s, 1),
        "end_of_speech_to_first_audio_ms": _summary([turn.timings.to_first_audio_ms for turn in spoken]),
        "stage_ms": {stage: _summary([turn.timings.stages()[stage] for turn in spoken]) for stage in STAGES},
        "stt_decode_ms": _summary([turn.timings.stt_decode_ms for turn in spoken]),
        "speculative_turns": speculative,
        "prompt_tokens_evaluated": summarize(evaluated, digits=0) if evaluated else None,
        "comma_pause": {
            "turns": len(comma_turns),
            "half_answers": sum(_answered_half(turns, comma) for turns in comma_turns),
            "heard": [[turn.said.text for turn in turns] for turns in comma_turns],
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _speculative_turns() -> dict[str, int]:
    """Speculative persona turns so far, committed and discarded, over every NPC (the production counter)."""
    totals = {"committed": 0, "discarded": 0}
    for metric in metrics.SPECULATIVE_TURNS_TOTAL.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") in totals:
                totals[sample.labels["outcome"]] += int(sample.value)
    return totals


def _answered_half(turns: list[SceneTurn], question: Recording) -> int:
    """1 when an NPC answered a line that is less than the whole question (the player was cut off)."""
    whole = len(question.text.split())
    return int(any(len(turn.said.text.split()) < whole * 0.75 for turn in turns))
