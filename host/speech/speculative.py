"""Speculative STT: transcribe while the endpoint wait is still running, so the two overlap.

Drive it with one speaker's VAD events:

    SilenceStarted  -> start transcribing the utterance as it stands
    SpeechResumed   -> discard that run (the utterance is growing)
    UtteranceEnded  -> `finish(ended)`: reuse the speculation when it covered exactly this audio, else transcribe now

A discarded run cannot stop Whisper mid-decode (it runs in a worker thread); its task is cancelled and its result,
if it still arrives, is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from host.speech.stt import Transcriber, Transcript
from host.speech.vad import SilenceStarted, SpeechResumed, UtteranceEnded, VadEvent


@dataclass
class SpeculationStats:
    started: int = 0
    discarded: int = 0
    reused: int = 0
    fresh: int = 0


@dataclass(frozen=True)
class _Speculation:
    utterance_id: str
    speech_end_sample: int
    audio_samples: int
    task: asyncio.Task[Transcript]


class SpeculativeTranscriber:
    """One per speaker stream. `vocabulary` (NPC names nearby) is passed to every transcription."""

    def __init__(self, transcriber: Transcriber, *, vocabulary: Sequence[str] = ()) -> None:
        self.transcriber = transcriber
        self.vocabulary = tuple(vocabulary)
        self.stats = SpeculationStats()
        self._current: _Speculation | None = None
        self._discarded: set[asyncio.Task[Transcript]] = set()

    def on_event(self, event: VadEvent) -> None:
        """Feed every VAD event of the speaker; only pauses and resumptions matter here."""
        if isinstance(event, SilenceStarted):
            self._discard()
            task = asyncio.create_task(
                self.transcriber.transcribe(event.audio, vocabulary=self.vocabulary),
                name=f"speculative-stt-{event.utterance_id[:8]}",
            )
            self._current = _Speculation(event.utterance_id, event.sample, len(event.audio), task)
            self.stats.started += 1
        elif isinstance(event, SpeechResumed):
            self._discard()

    async def finish(self, ended: UtteranceEnded) -> Transcript:
        """The transcript of an ended utterance, from the speculation when its audio is unchanged."""
        speculation, self._current = self._current, None
        if (
            speculation is not None
            and speculation.utterance_id == ended.utterance_id
            and speculation.speech_end_sample == ended.sample
            and speculation.audio_samples == len(ended.audio)
        ):
            self.stats.reused += 1
            return await speculation.task
        if speculation is not None:
            self._discard_task(speculation.task)
        self.stats.fresh += 1
        return await self.transcriber.transcribe(ended.audio, vocabulary=self.vocabulary)

    async def aclose(self) -> None:
        """Cancel whatever is still running and wait for the cancellations to settle."""
        self._discard()
        pending = list(self._discarded)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _discard(self) -> None:
        if self._current is not None:
            self._discard_task(self._current.task)
            self._current = None

    def _discard_task(self, task: asyncio.Task[Transcript]) -> None:
        self.stats.discarded += 1
        task.cancel()
        self._discarded.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Transcript]) -> None:
        self._discarded.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved so a failed, discarded run is not reported as never retrieved
