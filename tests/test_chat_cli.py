"""`npc-host chat --once` on the packaged model: a real reply, in character, recorded in the transcript."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from host.brain.guard import OutOfCharacterGuard
from host.brain.sentences import Sentence
from host.profiles.loader import load_server
from host.transcript.lines import SpokenLine
from host.transcript.reader import parse_bytes
from tests.conftest import REPO_ROOT


def test_chat_once_answers_in_character_and_records_the_exchange(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPC_HOST_")}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "NPC_HOST_PROFILES_DIR": str(REPO_ROOT / "npc_profiles"),
        "NPC_HOST_DATA_DIR": str(tmp_path / "data"),
        "NPC_HOST_TRANSCRIPTS_DIR": str(tmp_path / "transcripts"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "host", "chat", "example", "bram", "--as", "Alice", "--once", "Bram, is the stew hot?"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    transcripts = list((tmp_path / "transcripts" / "example").glob("*.log"))
    assert len(transcripts) == 1
    lines = [parsed.line for parsed in parse_bytes(transcripts[0].read_bytes(), transcripts[0]).lines]
    spoken = [line for line in lines if isinstance(line, SpokenLine)]
    assert [(line.source, line.speaker, line.addressee) for line in spoken] == [
        ("chat", "Alice", "bram"),
        ("npc", "bram", "Alice"),
    ]
    reply = spoken[1].text
    assert reply.strip(), "the NPC answered with nothing"
    # The terminal shows the same words in the same order, between mood marks such as "(happy)" and line wraps.
    shown = iter(result.stdout.split())
    assert all(word in shown for word in reply.split()), f"reply {reply!r} not shown in:\n{result.stdout}"

    bram = load_server(REPO_ROOT / "npc_profiles" / "example").npcs["bram"]
    guard = OutOfCharacterGuard(bram)
    assert isinstance(guard.check(Sentence(reply, None)), Sentence), f"out-of-character reply was spoken: {reply!r}"
