"""One player's microphone on the bridge: frame ordering, gap filling, 48 -> 16 kHz, and the streaming VAD.

`accept` runs on the event loop and only queues (cheap); `process` runs the resampler and Silero in a worker thread
on everything queued since the last call, so a busy connection batches many frames into one model call.

The queue is bounded per player and, through a shared `FrameBudget`, for all players together: when the VAD falls
behind, the oldest waiting frames are dropped (and counted), so memory never grows with the backlog.

A plugin may send nothing while its player is silent, so the end of an utterance cannot wait for silence to arrive:
when a player's frames stop mid-utterance, `fill_stalled` queues the silence the missing frames stand for, dated
from the last frame, and the utterance ends `end_silence_ms` after the player's last sound as if silence had come.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from host import metrics
from host.config import VADSettings
from host.speech.audio import WHISPER_RATE, StreamResampler, pcm16_to_int16
from host.speech.vad import StreamingVad, VadEvent
from proximity_audio.protocol import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, SEQUENCE_MODULUS

if TYPE_CHECKING:
    import onnxruntime

_HALF_RANGE = SEQUENCE_MODULUS // 2
_SILENT_FRAME = bytes(FRAME_SAMPLES * 2)
_FRAME_S = FRAME_MS / 1000


class SequenceTracker:
    """Orders one stream's frames by their u32 sequence numbers, which wrap around.

    `admit` says how many missing frames to fill with silence before this one, or None to drop it (a duplicate or
    a frame that arrives after a later one). A gap longer than `max_gap` is not filled: the sender paused (voice
    mods send nothing between talk bursts) rather than lost that much audio.
    """

    def __init__(self, max_gap: int) -> None:
        self._max_gap = max_gap
        self._expected: int | None = None

    def admit(self, sequence: int) -> int | None:
        if self._expected is None:
            self._expected = (sequence + 1) % SEQUENCE_MODULUS
            return 0
        ahead = (sequence - self._expected) % SEQUENCE_MODULUS
        if ahead >= _HALF_RANGE:
            return None
        self._expected = (sequence + 1) % SEQUENCE_MODULUS
        return ahead if ahead <= self._max_gap else 0


class FrameBudget:
    """Microphone frames waiting for the VAD across many players, at most `limit`; counts what was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self.dropped = 0
        self._lock = threading.Lock()  # taken on the event loop, given back from VAD worker threads

    def take(self, frames: int) -> int:
        """Count `frames` more as waiting; returns how many (oldest) frames the caller must drop to stay in bounds."""
        with self._lock:
            self.waiting += frames
            return max(self.waiting - self.limit, 0)

    def give_back(self, frames: int, *, dropped: bool = False) -> None:
        with self._lock:
            self.waiting -= frames
            if dropped:
                self.dropped += frames
        if dropped:
            metrics.BRIDGE_FRAMES_DROPPED.labels(reason="backlog").inc(frames)


@dataclass(frozen=True)
class Admission:
    accepted: bool
    filled: int = 0


class PlayerMicrophone:
    """Microphone frames of one player -> VAD events (16 kHz audio clock)."""

    def __init__(
        self,
        player: str,
        *,
        vad: VADSettings | None = None,
        max_gap: int = 25,
        max_pending: int = 50,
        budget: FrameBudget | None = None,
        session: onnxruntime.InferenceSession | None = None,
    ) -> None:
        self.player = player
        self._tracker = SequenceTracker(max_gap)
        self._resampler = StreamResampler(SAMPLE_RATE, WHISPER_RATE)
        self._vad = StreamingVad(vad, session=session)
        self._lock = threading.Lock()
        self._pending: deque[bytes] = deque()
        self._max_pending = max_pending
        self._budget = budget or FrameBudget(max_pending)
        self.dropped = 0  # frames dropped because the VAD fell behind
        self._last_arrival = time.time()  # the wall time of the last frame queued, real or filled in
        self._last_frame = self._last_arrival  # the wall time of the last frame the plugin sent
        self._stall_filled = 0  # frames of silence queued since the plugin's last frame
        self._early_end: tuple[str, float, int] | None = None  # `end_early`'s request, for the VAD's next feed

    @property
    def in_utterance(self) -> bool:
        """True while the player is speaking or pausing within an utterance."""
        return self._vad.in_speech

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def accept(self, sequence: int, pcm: bytes) -> Admission:
        """Queue one 20 ms frame of 48 kHz PCM (1920 bytes); call from the event loop."""
        fill = self._tracker.admit(sequence)
        if fill is None:
            return Admission(accepted=False)
        with self._lock:
            # A plugin that counted the frames it did not send: the silence filled in for the stall covers them.
            fill = max(0, fill - self._stall_filled)
            self._stall_filled = 0
            self._pending.extend([_SILENT_FRAME] * fill)
            self._pending.append(pcm)
            self._last_arrival = self._last_frame = time.time()
            drop = self._drop_oldest_beyond_bounds(fill + 1)
        if drop:
            self._budget.give_back(drop, dropped=True)
        return Admission(accepted=True, filled=fill)

    def _drop_oldest_beyond_bounds(self, added: int) -> int:
        """`added` frames were just queued (lock held): drop the oldest beyond this player's and the shared bound."""
        over = max(len(self._pending) - self._max_pending, self._budget.take(added))
        drop = min(over, len(self._pending))
        for _ in range(drop):
            self._pending.popleft()
        self.dropped += drop
        return drop

    def fill_stalled(self, now: float, stall_s: float) -> bool:
        """Mid-utterance and no frame for `stall_s`: queue silence for the time since the last frame queued (call
        from the event loop). True when some was queued."""
        if not self._vad.in_speech:
            return False
        with self._lock:
            missing = int((now - self._last_arrival) / _FRAME_S)
            if self._pending or now - self._last_frame < stall_s or missing <= 0:
                return False
            self._pending.extend([_SILENT_FRAME] * missing)
            self._last_arrival += missing * _FRAME_S
            self._stall_filled += missing
            drop = self._drop_oldest_beyond_bounds(missing)
        if drop:
            self._budget.give_back(drop, dropped=True)
        return True

    def end_early(self, utterance_id: str, speech_end_ts: float, silence_ms: int) -> None:
        """What the player said up to the pause that ended at `speech_end_ts` sounds finished: end the utterance
        after `silence_ms` of silence instead of `end_silence_ms` (`StreamingVad.end_early`; call from the event
        loop, the VAD takes it at its next feed)."""
        with self._lock:
            self._early_end = (utterance_id, speech_end_ts, silence_ms)

    def process(self) -> list[VadEvent]:
        """Run everything queued through the resampler and the VAD. Blocking: call from a worker thread."""
        with self._lock:
            pending, self._pending = self._pending, deque()
            arrival = self._last_arrival
            early_end, self._early_end = self._early_end, None
        if early_end is not None:
            self._vad.end_early(*early_end)
        if not pending:
            return []
        self._budget.give_back(len(pending))
        samples = self._resampler.push(pcm16_to_int16(b"".join(pending)))
        return self._vad.feed(samples, wall_ts=arrival)

    def finish(self) -> list[VadEvent]:
        """The player left or the connection closed: process what is queued and end an utterance in progress."""
        events = self.process()
        tail = self._resampler.push(np.zeros(0, dtype=np.int16), last=True)
        if len(tail):
            events.extend(self._vad.feed(tail, wall_ts=self._last_arrival))
        events.extend(self._vad.flush())
        return events
