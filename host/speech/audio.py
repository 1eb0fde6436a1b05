"""PCM16 audio basics: sample conversions, framing, WAV files, resampling, down-mix and DC removal.

The pipeline speaks 16-bit little-endian PCM everywhere. Three rates meet here: the voice bridge's 48 kHz, Whisper's
16 kHz and Piper's 22.05 kHz; `conform` turns any supported input into the mono int16 stream a stage expects.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
from numpy.typing import NDArray

from host.errors import NpcHostError

WHISPER_RATE = 16_000
PIPER_RATE = 22_050

Int16Array = NDArray[np.int16]
Float32Array = NDArray[np.float32]

_INT16_SCALE = 32768.0
# WAV files carry their own declared sizes; refuse absurd ones before reading (STYLE.md: cap what peers declare).
MAX_WAV_SECONDS = 30 * 60
MAX_CHANNELS = 8


class AudioFormatError(NpcHostError):
    """Audio in a shape this pipeline cannot use (corrupt file, unsupported encoding, wrong rate or layout)."""

    code = "audio_format"


@dataclass(frozen=True)
class Audio:
    """Decoded audio: int16 samples shaped (frames, channels), whatever the file's encoding was."""

    samples: Int16Array
    rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return int(self.samples.shape[0]) / self.rate


# --- sample conversions ------------------------------------------------------------------------------------------


def pcm16_to_int16(data: bytes) -> Int16Array:
    """Little-endian 16-bit PCM bytes to a (copied, writable) int16 array."""
    if len(data) % 2:
        raise AudioFormatError(f"PCM16 data must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def int16_to_pcm16(samples: Int16Array) -> bytes:
    return samples.astype("<i2", copy=False).tobytes()


def int16_to_float32(samples: Int16Array) -> Float32Array:
    """int16 to float32 in [-1, 1)."""
    return samples.astype(np.float32) / np.float32(_INT16_SCALE)


def _round_to_int16(values: NDArray[np.floating]) -> Int16Array:
    """Round to int16, clipping what lies outside instead of wrapping around."""
    rounded: Int16Array = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
    return rounded


def float32_to_int16(samples: NDArray[np.floating]) -> Int16Array:
    """float in [-1, 1] to int16; values outside are clipped."""
    return _round_to_int16(samples * _INT16_SCALE)


def as_int16(pcm: bytes | Int16Array) -> Int16Array:
    """Accept PCM16 bytes or an int16 array (mono), so callers can pass what they hold."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        return pcm16_to_int16(bytes(pcm))
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise AudioFormatError(f"expected mono int16 samples, got dtype {pcm.dtype} with shape {pcm.shape}")
    return pcm


def duration_ms(samples: int, rate: int) -> float:
    return samples * 1000.0 / rate


# --- framing -----------------------------------------------------------------------------------------------------


def split_frames(samples: Int16Array, frame_size: int, *, pad_last: bool = False) -> Iterator[Int16Array]:
    """Cut mono samples into frames of `frame_size`; the short tail is dropped, or zero-padded with `pad_last`."""
    if frame_size <= 0:
        raise ValueError("frame_size must be positive")
    whole = len(samples) // frame_size * frame_size
    for start in range(0, whole, frame_size):
        yield samples[start : start + frame_size]
    if pad_last and whole < len(samples):
        tail = np.zeros(frame_size, dtype=np.int16)
        tail[: len(samples) - whole] = samples[whole:]
        yield tail


class Framer:
    """Turns chunks of any length into frames of exactly `frame_size` samples, carrying the remainder over."""

    def __init__(self, frame_size: int) -> None:
        if frame_size <= 0:
            raise ValueError("frame_size must be positive")
        self.frame_size = frame_size
        self._pending: Int16Array = np.zeros(0, dtype=np.int16)

    @property
    def pending_samples(self) -> int:
        return len(self._pending)

    def push(self, pcm: bytes | Int16Array) -> list[Int16Array]:
        joined = np.concatenate((self._pending, as_int16(pcm)))
        whole = len(joined) // self.frame_size * self.frame_size
        self._pending = joined[whole:].copy()
        return list(split_frames(joined[:whole], self.frame_size))

    def clear(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)


# --- WAV files ---------------------------------------------------------------------------------------------------


def _decode_frames(raw: bytes, width: int, channels: int) -> Int16Array:
    if width == 1:  # 8-bit WAV is unsigned
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    elif width == 3:
        triplets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        data = ((triplets[:, 2].astype(np.int8).astype(np.int32) << 8) | triplets[:, 1]).astype(np.int16)
    else:
        data = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    return data.reshape(-1, channels)


def read_wav(path: Path | str) -> Audio:
    """Read a PCM WAV file (8, 16, 24 or 32-bit integer; any rate; up to 8 channels) as int16.

    Anything else (a corrupt header, float or compressed encodings, a truncated body) raises `AudioFormatError`
    naming the file.
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate, frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            if not 1 <= channels <= MAX_CHANNELS or width not in (1, 2, 3, 4) or rate <= 0:
                raise AudioFormatError(
                    f"{path}: unsupported WAV layout ({channels} channels, {width * 8}-bit, {rate} Hz)"
                )
            if frames > MAX_WAV_SECONDS * rate:
                raise AudioFormatError(f"{path}: WAV declares {frames / rate:.0f} s, more than {MAX_WAV_SECONDS} s")
            raw = wav.readframes(frames)
    except (wave.Error, EOFError, RuntimeError, ValueError, struct.error) as exc:
        # The stdlib reader signals malformed chunks with several exception types, some without a message.
        detail = str(exc) or "malformed chunk"
        raise AudioFormatError(f"{path}: not a readable PCM WAV file ({detail})") from None
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    frame_bytes = width * channels
    if len(raw) < frames * frame_bytes:
        raise AudioFormatError(f"{path}: WAV is truncated ({len(raw)} of {frames * frame_bytes} data bytes)")
    return Audio(samples=_decode_frames(raw, width, channels), rate=rate)


def write_wav(path: Path | str, samples: Int16Array, rate: int) -> None:
    """Write int16 samples, mono (n,) or interleaved (n, channels), as a 16-bit PCM WAV file."""
    frames = samples if samples.ndim == 2 else samples.reshape(-1, 1)  # (0, 2): silence, still stereo
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(int16_to_pcm16(frames))


# --- conversions between formats ---------------------------------------------------------------------------------


def downmix(samples: Int16Array) -> Int16Array:
    """(frames, channels) -> mono by averaging the channels; mono input is returned flattened."""
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    return _round_to_int16(samples.astype(np.float32).mean(axis=1))


def resample(samples: Int16Array, from_rate: int, to_rate: int) -> Int16Array:
    """Mono int16 resampling with soxr (high quality); a no-op when the rates match."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioFormatError(f"cannot resample from {from_rate} Hz to {to_rate} Hz")
    if from_rate == to_rate or len(samples) == 0:
        return samples
    out = soxr.resample(samples.astype(np.float32), from_rate, to_rate)
    return _round_to_int16(out)


def remove_dc(samples: Int16Array) -> Int16Array:
    """Subtract the mean, so a recording with a DC offset sits around zero (and its loudness is measured right)."""
    if len(samples) == 0:
        return samples
    centred = samples.astype(np.float32) - samples.astype(np.float32).mean()
    return _round_to_int16(centred)


def conform(audio: Audio, rate: int) -> Int16Array:
    """Any decoded audio -> mono int16 at `rate`, DC offset removed: what STT and the VAD expect."""
    return remove_dc(resample(downmix(audio.samples), audio.rate, rate))


def without_trailing_silence(samples: Int16Array, floor: int = 64) -> Int16Array:
    """Mono `samples` up to the last one louder than `floor` (-54 dBFS): a recording's speech without the digital
    silence it ends in, which a plugin would not send (it sends nothing while its player is silent)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    return samples[: loud[-1] + 1] if len(loud) else samples[:0]


def rms_dbfs(samples: Int16Array) -> float:
    """Loudness relative to full scale; silence is -inf."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20.0 * float(np.log10(rms / _INT16_SCALE)) if rms > 0 else float("-inf")


class StreamResampler:
    """Chunk-by-chunk mono int16 resampling (e.g. 48 kHz bridge frames -> 16 kHz for the VAD) without edge clicks."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16")

    def push(self, pcm: bytes | Int16Array, *, last: bool = False) -> Int16Array:
        samples = as_int16(pcm)
        if self._stream is None:
            return samples
        out: Int16Array = self._stream.resample_chunk(samples, last=last)
        return out
