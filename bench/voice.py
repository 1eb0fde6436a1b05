"""Voice benchmark: what a player waits for between the end of their question and the first sound of the answer.

The recorded questions of `host/demo_assets` go through the same in-process pipeline as `npc-host demo` (Silero VAD
on 32 ms frames, speculative faster-whisper tiny.en, the brain on the packaged SmolLM2 with every persona prefix
warmed first, Piper sentence by sentence) against a copy of the example village, TURNS times (fewer if they take
longer than TURNS_BUDGET_S; `turns` says how many were measured). Frames are fed without
waiting except during the endpoint wait, which runs at microphone speed from the real end of speech, so the numbers
are those of a live player (see `host/voice/pipeline.py`).

- `end_of_speech_to_first_audio_ms`: from the first silent window after the speech to the first PCM chunk of the reply.
- `stage_ms`: the same span cut into back-to-back stages: `endpoint_wait` (until the VAD ends the utterance),
  `stt` (until the transcript is ready: what speculative STT did not hide in the wait), `first_token`,
  `first_sentence`, `first_audio` (Piper's first chunk of the first sentence).
- `stt_decode_ms`: Whisper's own time per utterance; `stt_real_time_factor` and `tts_real_time_factor`: compute
  time over audio duration. `prompt_tokens_evaluated`: llama.cpp's count per turn (the persona prefix is reused).
- `peak_rss_mb`: the process's peak resident memory with all three models loaded.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import summarize
from host.config import Settings
from host.demo_assets import load_manifest
from host.events import Position
from host.llm.embedded import EmbeddedLLM
from host.llm.factory import close_all, make_llm
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.speech.audio import WHISPER_RATE, conform, read_wav
from host.speech.stt import WhisperTranscriber
from host.speech.tts import PiperSynthesizer
from host.voice.exchange import VoiceExchange
from host.voice.pipeline import VoicePipeline
from host.voice.timings import STAGES
from host.voice.warmup import warm_personas

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

TURNS = 21
TURNS_BUDGET_S = 100.0  # on a crowded machine fewer turns are measured rather than overrun the suite's bound
SERVER = "example"
TRAILING_SILENCE_S = 0.8
PROFILES = Path(__file__).resolve().parent.parent / "npc_profiles" / SERVER


def _summary(samples: list[float | None]) -> dict[str, float | int]:
    return summarize([sample for sample in samples if sample is not None])


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="npc-host-bench-voice-") as scratch:
        shutil.copytree(PROFILES, Path(scratch) / "profiles" / SERVER)
        settings = Settings(
            profiles_dir=Path(scratch) / "profiles",
            data_dir=Path(scratch) / "data",
            transcripts_dir=Path(scratch) / "transcripts",
        )
        services = await HostServices.open(settings, watch_profiles=False)
        try:
            return await _measure(services)
        finally:
            await services.aclose()
            await close_all()


async def _measure(services: HostServices) -> dict[str, Any]:
    settings = services.settings
    brain = make_brain(services)
    npcs = services.registry.npcs(SERVER)
    transcriber = WhisperTranscriber(settings.stt)
    synthesizer = PiperSynthesizer(settings.tts)
    started = time.perf_counter()
    await transcriber.load()
    for npc in npcs.values():
        await synthesizer.load(npc.voice)
    warmed = await warm_personas(brain, SERVER)
    load_and_warm_s = time.perf_counter() - started

    llm = make_llm(settings)
    evaluated: list[float] = []

    async def observe(_exchange: VoiceExchange) -> None:
        if isinstance(llm, EmbeddedLLM) and llm.last_stats is not None:
            evaluated.append(llm.last_stats.prompt_tokens_evaluated)

    pipeline = VoicePipeline(
        brain, transcriber, synthesizer, SERVER, vad=settings.vad, realtime=False, on_exchange=observe
    )
    questions = [recording for recording in load_manifest().recordings if len(recording.utterances) == 1]
    silence = np.zeros(int(TRAILING_SILENCE_S * WHISPER_RATE), dtype=np.int16)
    exchanges: list[VoiceExchange] = []
    began = time.perf_counter()
    for turn in range(TURNS):
        if time.perf_counter() - began > TURNS_BUDGET_S:
            break
        recording = questions[turn % len(questions)]
        npc = npcs[recording.npc or next(iter(npcs))]
        spot = npc.world.position
        position = Position(x=spot.x + 1.5, y=spot.y, z=spot.z, dimension=npc.world.dimension)
        recorded = await asyncio.to_thread(read_wav, recording.path)
        audio = np.concatenate((conform(recorded, WHISPER_RATE), silence))
        exchanges += await pipeline.listen(recording.player, position, audio)

    spoken = [exchange for exchange in exchanges if exchange.transcript is not None and exchange.audio]
    stt = [exchange.transcript for exchange in spoken if exchange.transcript is not None]
    return {
        "turns": len(spoken),
        "load_and_warm_s": round(load_and_warm_s, 1),
        "persona_warmup_ms": {npc_id: round(ms) for npc_id, ms in warmed.items()},
        "end_of_speech_to_first_audio_ms": _summary([exchange.timings.to_first_audio_ms for exchange in spoken]),
        "stage_ms": {stage: _summary([exchange.timings.stages()[stage] for exchange in spoken]) for stage in STAGES},
        "stt_decode_ms": _summary([transcript.ms for transcript in stt]),
        "stt_real_time_factor": round(sum(t.ms for t in stt) / sum(t.audio_ms for t in stt), 3),
        "tts_real_time_factor": round(sum(e.tts_ms for e in spoken) / sum(e.tts_audio_ms for e in spoken), 3),
        "prompt_tokens_evaluated": summarize(evaluated, digits=0) if evaluated else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
