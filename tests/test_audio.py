"""Audio basics: conversions, framing, WAV files, resampling, down-mix, DC removal, and refusal of bad files."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from host.speech.audio import (
    AudioFormatError,
    Framer,
    StreamResampler,
    conform,
    downmix,
    float32_to_int16,
    int16_to_float32,
    int16_to_pcm16,
    pcm16_to_int16,
    read_wav,
    remove_dc,
    resample,
    rms_dbfs,
    split_frames,
    write_wav,
)


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return float32_to_int16(amplitude * np.sin(2 * np.pi * freq * t))


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_pcm16_bytes_round_trip_little_endian() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    data = int16_to_pcm16(samples)
    assert data[:4] == b"\x00\x00\x01\x00"
    assert np.array_equal(pcm16_to_int16(data), samples)


def test_odd_byte_count_is_refused() -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        pcm16_to_int16(b"\x00\x01\x02")


def test_float_conversion_clips_instead_of_wrapping() -> None:
    out = float32_to_int16(np.array([2.0, -2.0, 0.5], dtype=np.float32))
    assert out.tolist() == [32767, -32768, 16384]
    assert int16_to_float32(np.array([-32768], dtype=np.int16))[0] == -1.0


def test_framer_carries_remainders_across_chunks() -> None:
    framer = Framer(4)
    assert framer.push(np.arange(3, dtype=np.int16)) == []
    frames = framer.push(np.arange(3, 10, dtype=np.int16))
    assert [f.tolist() for f in frames] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert framer.pending_samples == 2
    assert [f.tolist() for f in split_frames(np.arange(6, dtype=np.int16), 4, pad_last=True)] == [
        [0, 1, 2, 3],
        [4, 5, 0, 0],
    ]


def test_wav_round_trip(tmp_path: Path) -> None:
    samples = tone(440, 0.5, 16000)
    write_wav(tmp_path / "a.wav", samples, 16000)
    audio = read_wav(tmp_path / "a.wav")
    assert audio.rate == 16000 and audio.channels == 1
    assert np.array_equal(audio.samples[:, 0], samples)
    assert audio.duration_s == pytest.approx(0.5)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_integer_widths_are_converted(tmp_path: Path, width: int) -> None:
    samples = tone(300, 0.2, 8000)
    path = tmp_path / f"w{width}.wav"
    if width == 1:
        raw = ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        wide = samples.astype(np.int32) << 8
        raw = b"".join(struct.pack("<i", int(v))[:3] for v in wide)
    else:
        raw = (samples.astype(np.int32) << 16).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(8000)
        wav.writeframes(raw)
    decoded = read_wav(path).samples[:, 0]
    tolerance = 256 if width == 1 else 0
    assert np.max(np.abs(decoded.astype(np.int32) - samples)) <= tolerance


def test_corrupt_wav_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioFormatError, match=r"broken\.wav"):
        read_wav(path)


def test_truncated_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, tone(440, 1.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(AudioFormatError, match=r"cut\.wav.*truncated"):
        read_wav(path)


def test_float_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "float.wav"
    body = np.zeros(100, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body))
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    with pytest.raises(AudioFormatError, match=r"float\.wav"):
        read_wav(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match=r"nowhere\.wav"):
        read_wav(tmp_path / "nowhere.wav")


def test_resampling_keeps_pitch_and_duration() -> None:
    for from_rate, to_rate in [(48000, 16000), (22050, 48000), (8000, 16000)]:
        out = resample(tone(440, 1.0, from_rate), from_rate, to_rate)
        assert len(out) == to_rate
        assert dominant_frequency(out, to_rate) == pytest.approx(440, abs=2)


def test_stream_resampler_matches_rate_over_many_frames() -> None:
    resampler = StreamResampler(48000, 16000)
    source = tone(440, 1.0, 48000)
    out = [resampler.push(frame) for frame in split_frames(source, 960)]
    out.append(resampler.push(np.zeros(0, dtype=np.int16), last=True))
    joined = np.concatenate(out)
    assert len(joined) == pytest.approx(16000, abs=2)
    assert dominant_frequency(joined, 16000) == pytest.approx(440, abs=2)


def test_stereo_downmix_and_dc_removal_via_conform(tmp_path: Path) -> None:
    left = tone(440, 1.0, 44100, 0.4)
    stereo = np.stack([left, np.zeros_like(left)], axis=1) + 8000  # a strong DC offset on both channels
    path = tmp_path / "stereo.wav"
    write_wav(path, stereo.astype(np.int16), 44100)
    mono = conform(read_wav(path), 16000)
    assert mono.ndim == 1 and len(mono) == 16000
    assert abs(float(mono.mean())) < 5
    assert dominant_frequency(mono, 16000) == pytest.approx(440, abs=2)
    assert downmix(np.array([[100, 300]], dtype=np.int16)).tolist() == [200]


def test_loudness_of_silence_and_tone() -> None:
    assert rms_dbfs(np.zeros(100, dtype=np.int16)) == float("-inf")
    assert rms_dbfs(tone(440, 1.0, 16000, 0.5)) == pytest.approx(-9.03, abs=0.1)
    assert remove_dc(np.full(10, 500, dtype=np.int16)).tolist() == [0] * 10


def test_nothing_heard_is_written_as_an_empty_stereo_file(tmp_path: Path) -> None:
    """`npc-host bridge-sim` writes what a player heard: nothing at all when no NPC was within range."""
    path = tmp_path / "nothing.wav"
    write_wav(path, np.zeros((0, 2), dtype=np.int16), 48000)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getnframes(), wav.getframerate()) == (2, 0, 48000)
