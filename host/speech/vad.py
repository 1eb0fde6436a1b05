"""Streaming voice activity detection: Silero VAD per speaker, emitting speech start/pause/resume/end events.

Feed 16 kHz mono PCM in chunks of any size; the detector works on 512-sample (32 ms) windows and returns the events
those windows caused:

    SpeechStarted    speech has lasted `min_speech_ms` (a cough never gets here): barge-in may act on it
    SilenceStarted   speech paused for `pause_ms`: a caller may start STT speculatively on `audio`
    SpeechResumed    the pause was not the end: discard the speculation
    UtteranceEnded   silence lasted `end_silence_ms` (or the shorter wait `end_early` asked for), or the utterance
                     reached `max_utterance_s` (`cut`, and the speech continues in a new utterance that starts with
                     its own SpeechStarted)

The ONNX model is the one faster-whisper ships (its `get_vad_model()` session, loaded once per process and shared);
the recurrent state and audio context live in each `StreamingVad`. Inference costs about 0.2 ms per window on the
development machine (under 1% of a core per speaker), so `feed` runs inline on the caller's thread; all windows of
one chunk go through the model in a single batched call, and long stretches of near-digital silence skip the model
(see `SileroStream`).

Timestamps come from the audio clock (samples fed so far) and are mapped to wall-clock time through the arrival
time of the chunk being fed, so latency can be measured from the moment the speaker really went silent.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from host.config import VADSettings
from host.extras import MissingExtraError, missing_extra
from host.speech.audio import WHISPER_RATE, Float32Array, Framer, Int16Array, as_int16, int16_to_float32

# Imported here, on the importing thread, never lazily inside a loader thread: the VAD and Whisper load in parallel
# threads, and two threads importing faster_whisper at once deadlock on its module locks. Without the `voice` extra
# this module still imports (the bridge serves text chat and NPC voices without it); the model itself cannot load.
_import_error: ModuleNotFoundError | None = None
try:
    from faster_whisper.vad import get_vad_model
except ModuleNotFoundError as exc:
    if missing_extra(exc) is None:
        raise
    _import_error = exc

if TYPE_CHECKING:
    import onnxruntime

WINDOW = 512
CONTEXT = 64
RATE = WHISPER_RATE
_STATE_SHAPE = (1, 1, 128)
# Below `threshold`, speech continues until the probability falls under threshold - HYSTERESIS (as Silero does).
HYSTERESIS = 0.15
QUIET_PEAK = 0.001  # -60 dBFS, as float32 samples
QUIET_WINDOWS_BEFORE_SKIP = 16


def vad_missing() -> MissingExtraError | None:
    """Why no VAD can run in this installation (the error naming the `voice` extra), or None when it can."""
    return None if _import_error is None else missing_extra(_import_error)


@functools.cache
def silero_session() -> onnxruntime.InferenceSession:
    """The process-wide Silero session (faster-whisper's asset, single-threaded; safe to share across threads).
    Raises `MissingExtraError` (naming the `voice` extra) when faster-whisper is not installed."""
    missing = vad_missing()
    if missing is not None:
        raise missing
    session: onnxruntime.InferenceSession = get_vad_model().session
    return session


class SileroStream:
    """Silero's recurrent state and 64-sample audio context for one stream.

    Windows of near-digital silence (peak under -60 dBFS) are not sent to the model once `QUIET_WINDOWS_BEFORE_SKIP`
    of them in a row have been: their probability is 0 and the state has already settled on silence. A bridge fills
    gaps in a player's microphone stream with zeros, so most of the VAD work of quiet players disappears.
    """

    def __init__(self, session: onnxruntime.InferenceSession | None = None) -> None:
        self._session = session  # loaded at the first window the model hears: a microphone never fed needs no model
        self.windows_inferred = 0
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._quiet_run = 0

    def probabilities(self, windows: Float32Array) -> Float32Array:
        """Speech probability of each row of `windows` (n, 512), in order, carrying the state across calls."""
        probs = np.zeros(len(windows), dtype=np.float32)
        infer = np.ones(len(windows), dtype=bool)
        for i, quiet in enumerate(np.abs(windows).max(axis=1) < QUIET_PEAK):
            self._quiet_run = self._quiet_run + 1 if quiet else 0
            infer[i] = self._quiet_run <= QUIET_WINDOWS_BEFORE_SKIP
        start = 0
        while start < len(windows):
            stop = start
            while stop < len(windows) and infer[stop] == infer[start]:
                stop += 1
            if infer[start]:
                context = self._context if start == 0 else windows[start - 1, -CONTEXT:]
                probs[start:stop] = self._infer(windows[start:stop], context)
            start = stop
        self._context = windows[-1, -CONTEXT:].copy()
        return probs

    def _infer(self, windows: Float32Array, context: Float32Array) -> Float32Array:
        contexts = np.concatenate((context[None, :], windows[:-1, -CONTEXT:]))
        batch = np.concatenate((contexts, windows), axis=1)
        if self._session is None:
            self._session = silero_session()
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self.windows_inferred += len(windows)
        result: Float32Array = np.asarray(probs, dtype=np.float32).reshape(-1)
        return result


@dataclass(frozen=True)
class VadEvent:
    """`sample` is the audio-clock position of what the event reports; `wall_ts` the same moment in wall time."""

    utterance_id: str
    sample: int
    wall_ts: float

    @property
    def audio_ts(self) -> float:
        return self.sample / RATE


@dataclass(frozen=True)
class SpeechStarted(VadEvent):
    """`sample` is where the speech began (emitted once it has lasted the minimum)."""

    continued: bool = False  # the previous utterance was cut at the length cap; the speaker never stopped


@dataclass(frozen=True)
class SilenceStarted(VadEvent):
    """`sample` is where the speech stopped; `audio` is the utterance as it will be if the speech does not resume."""

    audio: Int16Array = field(repr=False)


@dataclass(frozen=True)
class SpeechResumed(VadEvent):
    pass


@dataclass(frozen=True)
class UtteranceEnded(VadEvent):
    """`sample`/`wall_ts` is where the speech ended (the latency origin); `audio` includes pre-roll and a short tail."""

    audio: Int16Array = field(repr=False)
    start_sample: int
    cut: bool = False
    early: bool = False  # ended after the shorter silence `end_early` asked for

    @property
    def start_ts(self) -> float:
        return self.start_sample / RATE

    @property
    def speech_end_ts(self) -> float:
        return self.audio_ts

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


# idle -> candidate (above the threshold, shorter than min speech) -> speech -> idle
_State = Literal["idle", "candidate", "speech"]


def _windows(ms: float) -> int:
    return max(1, math.ceil(ms * RATE / 1000 / WINDOW))


class StreamingVad:
    """Voice activity for one speaker's 16 kHz stream. Not thread-safe: one feeder per instance."""

    def __init__(self, settings: VADSettings | None = None, *, session: onnxruntime.InferenceSession | None = None):
        self.settings = settings or VADSettings()
        s = self.settings
        self._threshold = s.threshold
        self._neg_threshold = max(s.threshold - HYSTERESIS, 0.01)
        self._min_speech = _windows(s.min_speech_ms)
        self._pause = _windows(s.pause_ms)
        self._end_silence = max(_windows(s.end_silence_ms), self._pause)
        self._cap = int(s.max_utterance_s * RATE / WINDOW)
        # The cap is checked on voiced windows only; a pause shorter than the end silence may come first, so
        # checking this much early keeps every piece within max_utterance_s.
        self._cut_check = max(self._cap - self._end_silence + 1, 1)
        self._model = SileroStream(session)
        self._framer = Framer(WINDOW)
        self._preroll: deque[Int16Array] = deque(maxlen=_windows(s.pre_roll_ms) if s.pre_roll_ms else 0)
        self._anchor_sample = 0
        self._anchor_wall = time.time()
        self._reset_stream_state()

    def _reset_stream_state(self) -> None:
        self._window_index = 0  # global index of the next window
        self._idle()

    def _idle(self) -> None:
        self._state: _State = "idle"
        self._utterance_id = ""
        self._windows_kept: list[Int16Array] = []
        self._first_window = 0  # global index of _windows_kept[0]
        self._speech_start = 0
        self._voiced = 0
        self._silence_run = 0
        self._speech_end = 0
        self._pause_reported = False
        self._soft_pause: int | None = None
        self._pause_wall = 0.0  # the wall time the reported pause's speech ended, as its SilenceStarted said
        self._early_end: int | None = None  # windows of silence that end this pause (`end_early`), if fewer

    @property
    def windows_inferred(self) -> int:
        """How many windows went through the model (quiet stretches are skipped)."""
        return self._model.windows_inferred

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and UtteranceEnded."""
        return self._state == "speech"

    def end_early(self, utterance_id: str, speech_end_ts: float, silence_ms: int) -> bool:
        """What was said up to the pause that ended at `speech_end_ts` (the `SilenceStarted`'s wall time) sounds
        finished: end the utterance once its silence lasts `silence_ms`, at the next window fed if it already has.
        Ignored unless that pause is still going on (the speaker did not resume) and the wait is shorter than
        `end_silence_ms`. True when it applies."""
        if not self._pause_reported or utterance_id != self._utterance_id:
            return False
        if abs(self._pause_wall - speech_end_ts) > 0.001:
            return False  # an earlier pause of the same utterance: the speaker went on since
        windows = max(_windows(silence_ms), self._pause)
        if windows >= self._end_silence:
            return False
        self._early_end = windows
        return True

    def reset(self) -> None:
        """Forget everything (a new stream from the same speaker)."""
        self._model.reset()
        self._framer.clear()
        self._preroll.clear()
        self._anchor_sample = 0
        self._reset_stream_state()

    def feed(self, pcm: bytes | Int16Array, wall_ts: float | None = None) -> list[VadEvent]:
        """Process a chunk; `wall_ts` is when its last sample was captured (default: now)."""
        samples = as_int16(pcm)
        self._anchor_sample += len(samples)
        self._anchor_wall = time.time() if wall_ts is None else wall_ts
        windows = self._framer.push(samples)
        if not windows:
            return []
        probs = self._model.probabilities(int16_to_float32(np.stack(windows)))
        events: list[VadEvent] = []
        for window, prob in zip(windows, probs, strict=True):
            events.extend(self._step(window, float(prob)))
            self._window_index += 1
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: finish an utterance in progress (a candidate shorter than the minimum is dropped)."""
        events: list[VadEvent] = []
        if self._state == "speech":
            end = self._speech_end if self._silence_run else self._window_index
            events.append(self._end_utterance(end))
        self._idle()
        self._framer.clear()
        return events

    # --- the state machine, one 32 ms window at a time ---------------------------------------------------------

    def _step(self, window: Int16Array, prob: float) -> list[VadEvent]:
        index = self._window_index
        if self._state == "idle":
            if prob < self._threshold:
                self._preroll.append(window)
                return []
            self._begin(index, [*self._preroll, window])
        else:
            self._windows_kept.append(window)
            if prob < self._threshold:
                self._soft_pause = index
        voiced = prob >= self._threshold or (prob >= self._neg_threshold and self._silence_run == 0)
        return self._on_voiced(index) if voiced else self._on_silent(index)

    def _begin(self, index: int, kept: list[Int16Array]) -> None:
        self._state = "candidate"
        self._utterance_id = uuid.uuid4().hex
        self._windows_kept = kept
        self._first_window = index + 1 - len(kept)
        self._speech_start = index
        self._preroll.clear()

    def _on_voiced(self, index: int) -> list[VadEvent]:
        events: list[VadEvent] = []
        if self._pause_reported:
            events.append(SpeechResumed(self._utterance_id, self._sample(index), self._wall(index)))
        self._silence_run = 0
        self._pause_reported = False
        self._early_end = None
        if self._state == "candidate":
            self._voiced += 1
            if self._voiced >= self._min_speech:
                self._state = "speech"
                start = self._speech_start
                events.append(SpeechStarted(self._utterance_id, self._sample(start), self._wall(start)))
        elif index + 1 - self._first_window >= self._cut_check:
            events.extend(self._cut(index))
        return events

    def _on_silent(self, index: int) -> list[VadEvent]:
        if self._silence_run == 0:
            self._speech_end = index
        self._silence_run += 1
        if self._state == "candidate":
            if self._silence_run >= self._end_silence:
                self._back_to_idle()
            return []
        if self._silence_run == self._pause and not self._pause_reported:
            self._pause_reported = True
            end = self._speech_end
            self._pause_wall = self._wall(end)
            return [SilenceStarted(self._utterance_id, self._sample(end), self._pause_wall, self._audio_until(end))]
        if self._silence_run >= (self._early_end or self._end_silence):
            early = self._early_end is not None
            ended = self._end_utterance(self._speech_end, early=early)
            self._back_to_idle()
            return [ended]
        return []

    def _back_to_idle(self) -> None:
        """Leave an utterance (ended, or a candidate too short to count); its last windows become the pre-roll."""
        tail = self._windows_kept[-self._preroll.maxlen :] if self._preroll.maxlen else []
        self._idle()
        self._preroll.extend(tail)

    def _cut(self, index: int) -> list[VadEvent]:
        """The utterance hit the cap: end it at its latest soft pause in the second half (else here) and go on."""
        half = self._first_window + self._cap // 2
        cut_at = self._soft_pause + 1 if self._soft_pause is not None and self._soft_pause >= half else index + 1
        ended = self._end_utterance(cut_at, cut=True)
        rest = self._windows_kept[cut_at - self._first_window :]
        self._utterance_id = uuid.uuid4().hex
        self._windows_kept = rest
        self._first_window = self._speech_start = cut_at
        self._soft_pause = None
        start = SpeechStarted(self._utterance_id, self._sample(cut_at), self._wall(cut_at), continued=True)
        return [ended, start]

    def _end_utterance(self, end_window: int, *, cut: bool = False, early: bool = False) -> UtteranceEnded:
        return UtteranceEnded(
            self._utterance_id,
            self._sample(end_window),
            self._wall(end_window),
            audio=self._audio_until(end_window, tail=not cut),
            start_sample=self._sample(self._first_window),
            cut=cut,
            early=early,
        )

    def _audio_until(self, end_window: int, *, tail: bool = True) -> Int16Array:
        """The kept windows up to `end_window`, plus `pause_ms` of what followed (Whisper likes a little silence)."""
        stop = end_window - self._first_window + (self._pause if tail else 0)
        kept = self._windows_kept[:stop]
        return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int16)

    def _sample(self, window_index: int) -> int:
        return window_index * WINDOW

    def _wall(self, window_index: int) -> float:
        return self._anchor_wall - (self._anchor_sample - self._sample(window_index)) / RATE
