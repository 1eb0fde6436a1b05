"""Speech to text: the `Transcriber` seam and its faster-whisper implementation.

The model loads once per process (in a thread) and is shared; decoding runs in a worker thread with the settings
that measured fastest here (beam 1, temperature 0, no timestamps, no conditioning on earlier text). Whisper invents
text on audio without speech ("Thank you.", "you"); such results come back as an empty transcript, never as words.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from host import metrics
from host.config import STTSettings
from host.errors import NpcHostError
from host.events import PlayerSaid, PlayerUtterance
from host.packaged_models import whisper_tiny_en_dir
from host.speech.audio import WHISPER_RATE, Int16Array, as_int16, duration_ms, int16_to_float32, remove_dc, rms_dbfs
from host.speech.vad import WINDOW, SileroStream

# Imported on the importing thread (see host/speech/vad.py): lazy imports in loader threads deadlock.
from host.speech.whisper_window import FRAMES_PER_SECOND, WindowedWhisperModel

# Shorter or quieter audio cannot hold a word; Whisper is not even asked.
MIN_AUDIO_MS = 100.0
SILENCE_DBFS = -60.0
# Phrases Whisper produces on silence and noise (it learned them from subtitle credits). Dropped only when the
# audio shows no speech, so a player who really says "thank you" is still heard. Written as `normalise_words` leaves
# them ("Amara.org" -> "amara org"), since that is how they are compared.
HALLUCINATIONS = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "please subscribe",
        "bye",
        "so",
        "okay",
        "oh",
        "uh",
        "um",
        "hmm",
        "subtitles by the amara org community",
    }
)
# A looping decode repeats its last sentence until the token budget cuts it ("Should we shut the gate? Should we shut
# the gate? Should we shut"), most often on a short utterance; a player does not say the same sentence of three words
# or more twice in one breath.
LOOP_MIN_WORDS = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NON_SPEECH_MARKUP = re.compile(r"\[[^\]]*\]|\([^)]*\)|♪+")
_WORDS_ONLY = re.compile(r"[^a-z0-9' ]+")
HALLUCINATION_SPEECH_PROBABILITY = 0.5


DropReason = Literal["silence", "no_speech", "hallucination"]


class TranscriptionError(NpcHostError):
    code = "stt"


class Transcript(BaseModel):
    """What was heard. An empty `text` means no speech (see `dropped` for why words were discarded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    confidence: float = Field(ge=0.0, le=1.0, description="exp(average token log-probability)")
    no_speech_prob: float = Field(ge=0.0, le=1.0)
    avg_logprob: float
    ms: float = Field(ge=0.0, description="time spent transcribing")
    audio_ms: float = Field(ge=0.0)
    dropped: DropReason | None = Field(None, description="why there is no text")
    language: str = Field("en", description="the language Whisper decoded (the configured one, or the one it heard)")

    @property
    def empty(self) -> bool:
        return not self.text


class Transcriber(Protocol):
    async def transcribe(self, pcm16_16k: bytes | Int16Array, *, vocabulary: Sequence[str] = ()) -> Transcript:
        """Transcribe one utterance of 16 kHz mono PCM16; `vocabulary` lists names likely to be said."""
        ...


_models: dict[tuple[Path, int, int], WindowedWhisperModel] = {}
_models_lock = threading.Lock()


def load_whisper(path: Path, threads: int, window_s: float) -> WindowedWhisperModel:
    """The faster-whisper model at `path`, loaded once per process (blocking). Never downloads."""
    key = (path.resolve(), threads, round(window_s * FRAMES_PER_SECOND))
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if not (path / "model.bin").is_file():
                raise TranscriptionError(
                    f"no faster-whisper model in {path} (model.bin missing; NPC_HOST_STT__MODEL_PATH)", code="stt_model"
                )
            started = time.perf_counter()
            try:
                model = WindowedWhisperModel(
                    str(path),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=threads,
                    local_files_only=True,
                    window_frames=key[2],
                )
            except Exception as exc:  # CTranslate2 and tokenizers raise many types; the path is what matters
                raise TranscriptionError(
                    f"cannot load the faster-whisper model in {path}: {exc}", code="stt_model"
                ) from exc
            metrics.MODEL_LOAD_SECONDS.labels(kind="stt", model=path.name).set(time.perf_counter() - started)
            _models[key] = model
    return model


def normalise_words(text: str) -> str:
    """Lowercase words without punctuation: how transcripts are compared (hallucination list, word error rate)."""
    return " ".join(_WORDS_ONLY.sub(" ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on normalised words."""
    ref, hyp = normalise_words(reference).split(), normalise_words(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / len(ref)


def without_loops(text: str) -> str:
    """`text` with a sentence that repeats the one before it dropped, and a cut-off repeat at the end."""
    kept: list[str] = []
    sentences = _SENTENCE_END.split(text)
    for index, sentence in enumerate(sentences):
        words = normalise_words(sentence).split()
        before = normalise_words(kept[-1]).split() if kept else []
        repeated = len(words) >= LOOP_MIN_WORDS and words == before
        unfinished = not sentence.rstrip().endswith((".", "!", "?"))  # the token budget cut it, not the speaker
        cut_off_repeat = unfinished and index == len(sentences) - 1 and 2 <= len(words) < len(before)
        cut_off_repeat = cut_off_repeat and before[: len(words)] == words
        if not (repeated or cut_off_repeat):
            kept.append(sentence)
    return " ".join(kept)


def vocabulary_prompt(vocabulary: Sequence[str]) -> str | None:
    """Names the speaker is likely to say, as a prompt that biases Whisper toward their spelling."""
    names = [name.strip() for name in vocabulary if name.strip()]
    return ", ".join(names) + "." if names else None


def has_speech(samples: Int16Array, threshold: float = HALLUCINATION_SPEECH_PROBABILITY) -> bool:
    """Whether any 32 ms window of the audio looks like speech to Silero (a fresh stream state per call)."""
    whole = len(samples) // WINDOW * WINDOW
    if whole == 0:
        return False
    windows = int16_to_float32(samples[:whole]).reshape(-1, WINDOW)
    return bool(np.max(SileroStream().probabilities(windows)) >= threshold)


class WhisperTranscriber:
    """faster-whisper on the packaged tiny.en by default, or the model directory in `settings.model_path`."""

    def __init__(self, settings: STTSettings | None = None) -> None:
        self.settings = settings or STTSettings()

    @property
    def model_path(self) -> Path:
        return self.settings.model_path or whisper_tiny_en_dir()

    async def load(self) -> None:
        """Load the model in a thread; call at start-up so the first utterance does not pay for it."""
        await asyncio.to_thread(load_whisper, self.model_path, self.settings.threads, self.settings.encoder_window_s)

    async def transcribe(self, pcm16_16k: bytes | Int16Array, *, vocabulary: Sequence[str] = ()) -> Transcript:
        samples = remove_dc(as_int16(pcm16_16k))
        audio_ms = duration_ms(len(samples), WHISPER_RATE)
        if audio_ms < MIN_AUDIO_MS or rms_dbfs(samples) < SILENCE_DBFS:
            return _silent(audio_ms)
        return await asyncio.to_thread(self._decode, self.model_path, samples, vocabulary_prompt(vocabulary))

    def _decode(self, model_path: Path, samples: Int16Array, prompt: str | None) -> Transcript:
        settings = self.settings
        model = load_whisper(model_path, settings.threads, settings.encoder_window_s)  # cached after the first call
        started = time.perf_counter()
        try:
            segments, info = model.transcribe(
                int16_to_float32(samples),
                language=None if settings.language == "auto" else settings.language,
                beam_size=settings.beam_size,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                initial_prompt=prompt,
                no_speech_threshold=settings.no_speech_threshold,
                log_prob_threshold=settings.log_prob_threshold,
                vad_filter=False,
                max_new_tokens=max_new_tokens(len(samples)),
            )
            decoded = list(segments)  # decoding happens while the generator is consumed
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"transcription failed: {exc}") from exc
        text = " ".join(_NON_SPEECH_MARKUP.sub(" ", s.text).strip() for s in decoded).strip()
        text = without_loops(" ".join(text.split()))
        no_speech = max((s.no_speech_prob for s in decoded), default=1.0)
        avg_logprob = sum(s.avg_logprob for s in decoded) / len(decoded) if decoded else 0.0
        dropped = drop_reason(text, no_speech, avg_logprob, samples, self.settings)
        return Transcript(
            text="" if dropped else text,
            confidence=min(1.0, math.exp(avg_logprob)) if decoded else 0.0,
            no_speech_prob=min(1.0, max(0.0, no_speech)),
            avg_logprob=avg_logprob,
            ms=(time.perf_counter() - started) * 1000.0,
            audio_ms=duration_ms(len(samples), WHISPER_RATE),
            dropped=dropped,
            language=info.language or "en",
        )


def _silent(audio_ms: float) -> Transcript:
    return Transcript(
        text="", confidence=0.0, no_speech_prob=1.0, avg_logprob=0.0, ms=0.0, audio_ms=audio_ms, dropped="silence"
    )


def drop_reason(
    text: str, no_speech: float, avg_logprob: float, samples: Int16Array, settings: STTSettings
) -> DropReason | None:
    """Why a decoded text must not count as speech, or None when it stands."""
    words = normalise_words(text)
    if not words:
        return "no_speech"
    if no_speech > settings.no_speech_threshold and avg_logprob < settings.log_prob_threshold:
        return "no_speech"
    if words in HALLUCINATIONS and not has_speech(samples):
        return "hallucination"
    return None


# Speech is at most about 5 tokens a second; a decode looping on one phrase (Whisper's way of hallucinating) is cut
# here instead of running to its 224-token limit, which on two cores costs more than the whole real transcript.
TOKENS_PER_SECOND = 8
MIN_NEW_TOKENS = 16
WHISPER_MAX_NEW_TOKENS = 223


def max_new_tokens(samples: int) -> int:
    """The decode's token budget for `samples` of 16 kHz audio."""
    budget = MIN_NEW_TOKENS + math.ceil(samples / WHISPER_RATE * TOKENS_PER_SECOND)
    return min(budget, WHISPER_MAX_NEW_TOKENS)


def spoken_language(transcript: Transcript) -> str | None:
    """English is what every NPC speaks by default (None); another language is passed on for the NPC to answer in."""
    return transcript.language if transcript.language != "en" else None


def player_said(utterance: PlayerUtterance, transcript: Transcript) -> PlayerSaid | None:
    """The `PlayerSaid` event for a transcribed utterance, or None when nothing was said."""
    if transcript.empty:
        return None
    return PlayerSaid(
        server=utterance.server,
        player=utterance.player,
        text=transcript.text,
        source="voice",
        position=utterance.position,
        confidence=transcript.confidence,
        language=spoken_language(transcript),
        utterance_id=utterance.id,
        speech_end_ts=utterance.speech_end_ts,
        endpoint_ts=utterance.ts,
        stt_ms=transcript.ms,
    )
