"""NPCs on the one packaged Piper voice sound like different people: per-NPC pitch and timbre, measured on the audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host.profiles.loader import load_server
from host.profiles.schema import VoiceSpec
from host.speech.audio import Int16Array, pcm16_to_int16
from host.speech.tts import PiperSynthesizer

LINE = "The road to the village is long, but the inn is warm tonight."


def median_pitch_hz(samples: Int16Array, sample_rate: int) -> float:
    """Median fundamental frequency of the voiced 40 ms frames (autocorrelation peak between 60 and 400 Hz)."""
    audio = samples.astype(np.float64)
    frame, hop = int(0.04 * sample_rate), int(0.02 * sample_rate)
    loud = 0.3 * float(np.sqrt(np.mean(audio**2)))
    shortest, longest = int(sample_rate / 400), int(sample_rate / 60)
    found = []
    for start in range(0, len(audio) - frame, hop):
        piece = audio[start : start + frame] - audio[start : start + frame].mean()
        if np.sqrt(np.mean(piece**2)) < loud:
            continue
        correlation = np.correlate(piece, piece, "full")[frame - 1 :]
        lag = shortest + int(np.argmax(correlation[shortest:longest]))
        if correlation[lag] > 0.5 * correlation[0]:  # clearly periodic: a voiced frame
            found.append(sample_rate / lag)
    assert len(found) >= 20, "too few voiced frames to measure"
    return float(np.median(found))


@pytest.fixture
def village(repo_root: Path) -> dict[str, VoiceSpec]:
    load = load_server(repo_root / "npc_profiles" / "example")
    return {npc.name: npc.voice.model_copy(update={"variation": 0.0}) for npc in load.npcs.values()}


async def _pitch_and_length(voice: VoiceSpec) -> tuple[float, float]:
    audio = await PiperSynthesizer().synthesize(LINE, voice)
    return median_pitch_hz(pcm16_to_int16(audio.pcm), audio.sample_rate), audio.duration_ms


async def test_the_guard_captain_does_not_sound_like_the_innkeeper(village: dict[str, VoiceSpec]) -> None:
    bram_hz, bram_ms = await _pitch_and_length(village["Bram"])
    hilde_hz, hilde_ms = await _pitch_and_length(village["Hilde"])
    birch_hz, _ = await _pitch_and_length(village["Old Birch"])
    # The profiles ask for 6 semitones between Hilde and Bram (x1.41) and 3 between Bram and Old Birch (x0.84).
    assert hilde_hz > 1.25 * bram_hz, (bram_hz, hilde_hz)
    assert birch_hz < 0.92 * bram_hz, (bram_hz, birch_hz)
    # A pitch change must not turn into a speed change: same text, similar length (their speeds differ by 10 %).
    assert 0.75 < hilde_ms / bram_ms < 1.3


async def test_pitch_moves_by_the_semitones_asked() -> None:
    plain = VoiceSpec(variation=0.0)
    base_hz, base_ms = await _pitch_and_length(plain)
    up_hz, up_ms = await _pitch_and_length(plain.model_copy(update={"pitch": 4.0}))
    assert up_hz / base_hz == pytest.approx(2 ** (4 / 12), rel=0.08)
    assert up_ms == pytest.approx(base_ms, rel=0.15)  # Piper stretches speech, not its pauses, by length_scale


async def test_timbre_tilts_the_spectrum() -> None:
    """The share of energy above 3 kHz: a darker timbre has less of it, a brighter one more."""
    shares = {}
    for timbre in (-0.8, 0.0, 0.8):
        audio = await PiperSynthesizer().synthesize(LINE, VoiceSpec(variation=0.0, timbre=timbre))
        samples = pcm16_to_int16(audio.pcm).astype(np.float64)
        power = np.abs(np.fft.rfft(samples)) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / audio.sample_rate)
        shares[timbre] = float(power[freqs > 3000].sum() / power.sum())
    assert shares[-0.8] < shares[0.0] < shares[0.8]
