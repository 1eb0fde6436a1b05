"""Text to speech: the `Synthesizer` seam and its Piper implementation.

Voices load once per process (cached by file path) and synthesis runs in a worker thread. `stream` yields one chunk
per sentence as Piper finishes it and computes the next only when the caller asks, so a caller that stops iterating
(barge-in) wastes at most one sentence of compute.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

# Imported on the importing thread (see host/speech/vad.py): lazy imports in loader threads deadlock.
from piper import PiperVoice, SynthesisConfig
from pydantic import BaseModel, ConfigDict, Field

from host import metrics
from host.config import TTSSettings
from host.errors import NpcHostError
from host.packaged_models import piper_joe_paths
from host.profiles.schema import VoiceSpec
from host.speech.audio import Int16Array, float32_to_int16
from host.speech.emotions import VoiceParams, voice_params
from host.speech.voice_shape import shape

PACKAGED = "packaged"


class VoiceError(NpcHostError):
    code = "voice"


class SynthesizedAudio(BaseModel):
    """Mono 16-bit PCM of one piece of speech; `ms` is how long synthesis took."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pcm: bytes = Field(repr=False)
    sample_rate: int = Field(gt=0)
    ms: float = Field(ge=0)
    params: VoiceParams

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / 2 * 1000.0 / self.sample_rate


class Synthesizer(Protocol):
    async def synthesize(self, text: str, voice: VoiceSpec, emotion: str | None = None) -> SynthesizedAudio:
        """All of `text` as one piece of audio."""
        ...

    def stream(self, text: str, voice: VoiceSpec, emotion: str | None = None) -> AsyncGenerator[SynthesizedAudio, None]:
        """`text` sentence by sentence, each yielded as soon as it is ready."""
        ...


_voices: dict[Path, PiperVoice] = {}
_voices_lock = threading.Lock()


def load_voice(model: Path, config: Path | None = None) -> PiperVoice:
    """The Piper voice at `model`, loaded on first use and shared by every caller in the process (blocking)."""
    model = model.resolve()
    with _voices_lock:
        voice = _voices.get(model)
        if voice is None:
            config = config or model.with_name(model.name + ".json")
            for path in (model, config):
                if not path.is_file():
                    raise VoiceError(
                        f"Piper voice file not found: {path} (the NPC's [voice] model, or NPC_HOST_TTS__DEFAULT_VOICE)",
                        code="voice_missing",
                    )
            started = time.perf_counter()
            try:
                voice = PiperVoice.load(model, config_path=config)
            except Exception as exc:  # onnxruntime and json raise many types; the file name is what matters
                raise VoiceError(f"cannot load Piper voice {model}: {exc}", code="voice_invalid") from exc
            metrics.MODEL_LOAD_SECONDS.labels(kind="tts", model=model.name).set(time.perf_counter() - started)
            _voices[model] = voice
    return voice


class PiperSynthesizer:
    """Piper voices per NPC: `VoiceSpec.model` is 'packaged' (the configured default voice) or a voice file path.

    Relative voice paths are resolved against `voices_dir` (the server's profile folder, where profiles name them).
    """

    def __init__(self, settings: TTSSettings | None = None, *, voices_dir: Path | None = None) -> None:
        self.settings = settings or TTSSettings()
        self.voices_dir = voices_dir or Path.cwd()

    def voice_paths(self, voice: VoiceSpec) -> tuple[Path, Path | None]:
        if voice.model == PACKAGED:
            if self.settings.default_voice is not None:
                return self.settings.default_voice, None
            model, config = piper_joe_paths()
            return model, config
        path = Path(voice.model).expanduser()
        return (path if path.is_absolute() else self.voices_dir / path), None

    async def load(self, voice: VoiceSpec) -> PiperVoice:
        """Load (or fetch from the cache) the voice in a thread; call at start-up to keep first audio fast."""
        model, config = self.voice_paths(voice)
        return await asyncio.to_thread(load_voice, model, config)

    async def synthesize(self, text: str, voice: VoiceSpec, emotion: str | None = None) -> SynthesizedAudio:
        piper_voice = await self.load(voice)
        params = self._params(piper_voice, voice, emotion)
        return await asyncio.to_thread(self._synthesize_all, piper_voice, text, params)

    async def stream(
        self, text: str, voice: VoiceSpec, emotion: str | None = None
    ) -> AsyncGenerator[SynthesizedAudio, None]:
        piper_voice = await self.load(voice)
        params = self._params(piper_voice, voice, emotion)
        sentences = _sentences(piper_voice, text, params)
        while True:
            started = time.perf_counter()
            samples = await asyncio.to_thread(next, sentences, None)
            if samples is None:
                return
            yield _result(samples, piper_voice, params, started)

    @staticmethod
    def _params(piper_voice: PiperVoice, voice: VoiceSpec, emotion: str | None) -> VoiceParams:
        speakers = piper_voice.config.num_speakers
        if voice.speaker >= max(speakers, 1):
            raise VoiceError(
                f"voice.speaker {voice.speaker} is out of range: {voice.model} has {speakers} speaker(s)",
                code="voice_speaker",
            )
        return voice_params(voice, emotion, model_noise_w=piper_voice.config.noise_w_scale)

    @staticmethod
    def _synthesize_all(piper_voice: PiperVoice, text: str, params: VoiceParams) -> SynthesizedAudio:
        started = time.perf_counter()
        pieces = list(_sentences(piper_voice, text, params))
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        return _result(samples, piper_voice, params, started)


def _sentences(piper_voice: PiperVoice, text: str, params: VoiceParams) -> Iterator[Int16Array]:
    config = SynthesisConfig(
        speaker_id=params.speaker if piper_voice.config.num_speakers > 1 else None,
        length_scale=params.length_scale,
        noise_scale=params.noise_scale,
        noise_w_scale=params.noise_w_scale,
        normalize_audio=True,
        volume=params.volume,
    )
    rate = piper_voice.config.sample_rate
    for chunk in piper_voice.synthesize(text, syn_config=config):
        yield shape(float32_to_int16(chunk.audio_float_array), rate, semitones=params.pitch, timbre=params.timbre)


def _result(samples: Int16Array, piper_voice: PiperVoice, params: VoiceParams, started: float) -> SynthesizedAudio:
    return SynthesizedAudio(
        pcm=samples.astype("<i2", copy=False).tobytes(),
        sample_rate=piper_voice.config.sample_rate,
        ms=(time.perf_counter() - started) * 1000.0,
        params=params,
    )
