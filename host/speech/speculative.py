"""Speculative STT: transcribe while the endpoint wait is still running, so the two overlap.

Per speaker (a player on a server), driven by the utterances stream:

    PlayerPaused     -> `start`: transcribe the utterance as it stands (a newer pause replaces an older run)
    PlayerUtterance  -> `finish`: reuse the run when it covered exactly this utterance's audio, else transcribe now

A replaced run cannot stop Whisper mid-decode (it runs in a worker thread); its task is cancelled and its result,
if it still arrives, is dropped. At most `MAX_SPEAKERS` runs are kept: a pause whose utterance is never heard (the
player walked out of range) does not stay forever.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from host import metrics
from host.speech.audio import Int16Array
from host.speech.stt import Transcriber, Transcript

MAX_SPEAKERS = 1024


@dataclass
class SpeculationStats:
    started: int = 0
    discarded: int = 0
    reused: int = 0
    fresh: int = 0


@dataclass(frozen=True)
class _Speculation:
    utterance_id: str
    audio_samples: int
    task: asyncio.Task[Transcript]


class SpeculativeTranscriber:
    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber
        self.stats = SpeculationStats()
        self._current: OrderedDict[Hashable, _Speculation] = OrderedDict()
        self._discarded: set[asyncio.Task[Transcript]] = set()

    def start(
        self, speaker: Hashable, utterance_id: str, audio: Int16Array, vocabulary: Sequence[str] = ()
    ) -> asyncio.Task[Transcript]:
        """The speaker paused: transcribe `audio` (16 kHz) in the background. The run's task is returned so a caller
        can act on an early transcript while `pending` says the utterance has not ended yet."""
        self._discard(speaker)
        task = asyncio.create_task(
            self.transcriber.transcribe(audio, vocabulary=vocabulary), name=f"speculative-stt-{utterance_id[:8]}"
        )
        self._current[speaker] = _Speculation(utterance_id, len(audio), task)
        self.stats.started += 1
        while len(self._current) > MAX_SPEAKERS:
            self._discard(next(iter(self._current)))
        return task

    def pending(self, speaker: Hashable, task: asyncio.Task[Transcript]) -> bool:
        """`task` is still the speaker's run, neither replaced by a newer pause nor taken by the utterance's end."""
        speculation = self._current.get(speaker)
        return speculation is not None and speculation.task is task

    async def finish(
        self, speaker: Hashable, utterance_id: str, audio: Int16Array, vocabulary: Sequence[str] = ()
    ) -> Transcript:
        """The transcript of an ended utterance, from the speculation when its audio is unchanged."""
        speculation = self._current.pop(speaker, None)
        if (
            speculation is not None
            and speculation.utterance_id == utterance_id
            and speculation.audio_samples == len(audio)
        ):
            self.stats.reused += 1
            metrics.SPECULATIVE_STT_TOTAL.labels(outcome="reused").inc()
            return await speculation.task
        if speculation is not None:
            self._discard_task(speculation.task)
        self.stats.fresh += 1
        metrics.SPECULATIVE_STT_TOTAL.labels(outcome="fresh").inc()
        return await self.transcriber.transcribe(audio, vocabulary=vocabulary)

    async def aclose(self) -> None:
        """Cancel whatever is still running and wait for the cancellations to settle."""
        for speaker in list(self._current):
            self._discard(speaker)
        pending = list(self._discarded)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _discard(self, speaker: Hashable) -> None:
        speculation = self._current.pop(speaker, None)
        if speculation is not None:
            self._discard_task(speculation.task)

    def _discard_task(self, task: asyncio.Task[Transcript]) -> None:
        self.stats.discarded += 1
        task.cancel()
        self._discarded.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Transcript]) -> None:
        self._discarded.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved so a failed, discarded run is not reported as never retrieved
