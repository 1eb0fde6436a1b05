"""`npc-host demo --fast` as a user runs it: a subprocess on the packaged models (Whisper, SmolLM2, Piper) that writes
reply WAVs a person can listen to and a report with every stage timing, without touching the user's own data. The
scene goes through the voice bridge: every microphone frame of the recordings reaches it over the WebSocket and every
reply is what its plugin received."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host.demo_assets import load_manifest
from host.speech.audio import conform, read_wav, rms_dbfs, without_trailing_silence
from host.speech.stt import word_error_rate
from proximity_audio.protocol import FRAME_SAMPLES, SAMPLE_RATE

# A bound for a crowded 2-core machine (the scene plays in real time, models are slow under load), not a speed check.
pytestmark = pytest.mark.timeout(1560)

STAGES = {"stt", "first_token", "first_sentence", "first_audio", "end_of_speech_to_first_audio"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    workdir = tmp_path_factory.mktemp("demo")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_HOST_")}
    env["ORT_DISABLE_TELEMETRY"] = "1"
    command = [sys.executable, "-m", "host", "demo", "--fast", "--report", "r.json", "--out", "out"]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1500, check=False)
    return workdir, done


def test_the_demo_speaks_every_reply_and_reports_its_timings(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    workdir, done = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((workdir / "r.json").read_text())
    assert set(report) == {"turns", "bridge"}
    turns = report["turns"]
    assert [turn["npc"] for turn in turns[:4]] == ["bram", "hilde", "birch", "birch"]
    assert {turn["npc"] for turn in turns[4:]} == {"bram"} and len(turns) >= 5

    manifest = load_manifest()
    for turn in turns:
        assert set(turn) == {"npc", "player", "heard", "reply", "audio", "ms"}
        assert set(turn["ms"]) == STAGES
    typed = turns[2]
    assert typed["heard"] == "Old Birch, what do you think of woodcutters?"  # no speech to transcribe or time from
    assert typed["ms"]["stt"] is None and typed["ms"]["end_of_speech_to_first_audio"] is None
    assert typed["ms"]["first_audio"] is not None
    spoken = [turns[0], turns[1], turns[3]]
    for turn, file in zip(spoken, ("bram_room.wav", "hilde_road.wav", "birch_age.wav"), strict=True):
        question = manifest.get(file)
        assert turn["player"] == question.player
        assert word_error_rate(question.text, turn["heard"]) <= 0.2
        assert None not in turn["ms"].values(), turn
    for turn in turns[4:]:  # the two questions in a row: the first answer may have been cut off before any audio
        assert min(word_error_rate(line, turn["heard"]) for line in manifest.get("two_questions.wav").utterances) <= 0.2
    for turn in turns:
        if turn is turns[4] and not turn["reply"]:
            continue  # the first of two questions in a row: cut before its first sentence was heard to the end
        assert turn["reply"]
        wav = read_wav(workdir / turn["audio"])
        assert wav.rate == SAMPLE_RATE and wav.duration_s > 0.5  # the bridge's 48 kHz, as the plugin received it
        assert rms_dbfs(wav.samples[:, 0]) > -35.0, f"{turn['audio']} is silent"


def test_the_demo_keeps_to_its_out_folder(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = demo_run
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in workdir.iterdir()) == ["out", "r.json"]
    assert list((workdir / "out" / "transcripts" / "example").glob("*.log"))
    assert "Alice says:" in done.stdout and "ms after end of speech" in done.stdout


def test_the_demo_goes_through_the_voice_bridge(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The players' speech reached the host only as microphone frames over the bridge's WebSocket, and the NPCs' replies
    left it only as audio frames: nothing was handed over in-process."""
    workdir, done = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((workdir / "r.json").read_text())
    manifest = load_manifest()
    spoken = ("bram_room.wav", "hilde_road.wav", "birch_age.wav", "two_questions.wav")
    # Each recording without its trailing digital silence, in 20 ms frames (the last one padded).
    frames_sent = sum(
        -(-len(without_trailing_silence(conform(read_wav(manifest.get(file).path), SAMPLE_RATE))) // FRAME_SAMPLES)
        for file in spoken
    )
    bridge = report["bridge"]
    assert bridge["microphone_frames_in"] == frames_sent
    assert bridge["utterances_heard"] >= 5  # two_questions.wav is two utterances
    heard_frames = sum(
        len(read_wav(workdir / turn["audio"]).samples) // FRAME_SAMPLES for turn in report["turns"] if turn["audio"]
    )
    assert bridge["audio_frames_out"] >= heard_frames > 0
