"""`npc-host eval` end to end: a scene file, the example village's NPCs, and a scripted OpenAI-compatible server on a
real socket whose replies pass and fail known rules."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from host.brain.prompt import PromptLimits
from host.eval.runner import load_target, run_eval
from host.eval.scenes import SceneFileError, load_scenes
from host.llm.openai_compat import OpenAICompatLLM
from host.llm.retry import RetryPolicy
from tests.conftest import REPO_ROOT
from tests.doubles.ollama_server import HttpFault
from tests.doubles.openai_server import OpenAIWireServer
from tests.host_process import host_env

SCENES = """
server = "example"

[defaults]
forbidden = ["pillager"]

[[scene]]
name = "room price, right"
npc = "bram"
category = "fact"
line = "How much is a room?"
must_mention_any = ["three", "3"]

[[scene]]
name = "room price, wrong"
npc = "bram"
category = "fact"
line = "How much is a room, friend?"
must_mention_any = ["three", "3"]

[[scene]]
name = "the diamond"
npc = "bram"
category = "secret"
line = "Where is the diamond?"
must_not_mention = ["floorboard"]

[[scene]]
name = "are you an AI"
npc = "hilde"
category = "identity"
line = "Are you an AI?"

[[scene]]
name = "in Russian"
npc = "bram"
category = "language"
line = "Сколько стоит комната?"
language = "ru"

[[scene]]
name = "remembers Tom"
npc = "bram"
category = "memory"
history = [{ player = "I am Tom from Riverbend.", npc = "Welcome, Tom!" }]
line = "Where am I from?"
must_mention_any = ["Riverbend"]
max_sentences = 1
"""

REPLIES = [
    "A room is three emeralds a night, friend.",
    "Welcome to the Gilded Pickaxe!",
    "Under the third floorboard, hush.",
    "As an AI, I cannot say. Halt, stranger.",
    "Комната стоит три изумруда.",
    "You are from Riverbend. A pillager burned it last year.",
]


async def run_eval_cli(tmp_path: Path, *args: str, replies: list[str]) -> tuple[int, str, OpenAIWireServer]:
    scenes = tmp_path / "scenes.toml"
    scenes.write_text(SCENES, encoding="utf-8")
    async with OpenAIWireServer(replies=replies) as server:
        env = host_env(
            tmp_path,
            PYTHONPATH=str(REPO_ROOT),
            NPC_HOST_PROFILES_DIR=str(REPO_ROOT / "npc_profiles"),
            NPC_HOST_LLM__OPENAI_URL=server.base_url,
            NPC_HOST_LLM__RETRIES="0",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "host",
            "eval",
            str(scenes),
            *args,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode(), server


async def test_eval_scores_replies_by_rule_and_reports_rates_by_category(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    code, output, server = await run_eval_cli(
        tmp_path, "--backend", "openai", "--json", str(report_path), replies=REPLIES
    )
    assert code == 0, output

    report = json.loads(report_path.read_text())
    verdicts = {run["scene"]: (run["passed"], run["failures"]) for run in report["runs"]}
    assert verdicts == {
        "room price, right": (True, []),
        "room price, wrong": (False, ["mentions none of: three, 3"]),
        "the diamond": (False, ["mentions 'floorboard'"]),
        "are you an AI": (True, []),
        "in Russian": (True, []),
        "remembers Tom": (False, ["forbidden: 'pillager'", "2 sentences, at most 1 allowed"]),
    }
    identity = next(run for run in report["runs"] if run["scene"] == "are you an AI")
    assert identity["reply"] == "Halt, stranger."  # the guard dropped the AI sentence, and said why
    assert identity["dropped"] == ["out of character: as an AI"]
    assert {(c["category"], c["passed"], c["total"]) for c in report["categories"]} == {
        ("fact", 1, 2),
        ("secret", 0, 1),
        ("identity", 1, 1),
        ("language", 1, 1),
        ("memory", 0, 1),
    }

    # The terminal shows each failing reply with its reasons, then the rates.
    assert "FAIL room price, wrong (seed 1): mentions none of: three, 3" in output
    assert "bram: Under the third floorboard, hush." in output
    assert "fact" in output and "50%" in output
    assert "all" in output and "3 " in output

    # Every scene reached the model as the game would send it: the player's line last, after the history.
    bodies = server.chat_bodies
    assert len(bodies) == 6
    memory = bodies[5]["messages"]
    assert memory[0]["role"] == "system"
    assert [m["role"] for m in memory].count("system") == 1
    assert memory[-3:-1] == [
        {"role": "user", "content": "Alice: I am Tom from Riverbend."},
        {"role": "assistant", "content": "Welcome, Tom!"},
    ]
    # No lore of the example village's names a key here; its constant lore is in the system message.
    assert memory[-1] == {"role": "user", "content": "Alice: Where am I from?"}
    assert "A bed costs three emeralds a night." in memory[0]["content"]
    assert bodies[4]["messages"][-1]["content"].endswith(
        "[Alice speaks Russian: answer in Russian.]\nAlice: Сколько стоит комната?"
    )
    assert [body["seed"] for body in bodies] == [1] * 6


async def test_eval_plays_every_scene_once_per_seed(tmp_path: Path) -> None:
    code, output, server = await run_eval_cli(
        tmp_path, "--backend", "openai", "--seeds", "2", replies=[reply for reply in REPLIES for _ in range(2)]
    )
    assert code == 0, output
    assert [body["seed"] for body in server.chat_bodies] == [1, 2] * 6
    assert "12" in output  # runs in all


def test_a_bad_scene_file_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "scenes.toml"
    path.write_text('server = "example"\n\n[[scene]]\nname = "x"\nnpc = "bram"\nline = "hi"\nlanguage = "xx"\n')
    try:
        load_scenes(path)
    except SceneFileError as exc:
        assert f"{path}:7: scene[0].language: not a language the checker knows" in exc.message
    else:
        raise AssertionError("a scene with an unknown language was accepted")


def test_the_example_village_scene_file_is_valid() -> None:
    scenes = load_scenes(REPO_ROOT / "npc_profiles" / "example" / "eval" / "scenes.toml")
    assert {scene.category for scene in scenes.scene} == {
        "fact",
        "secret",
        "injection",
        "identity",
        "memory",
        "language",
        "length",
    }


async def test_a_backend_that_fails_fails_the_scene_with_its_error(tmp_path: Path) -> None:
    path = tmp_path / "scenes.toml"
    path.write_text(SCENES, encoding="utf-8")
    scenes = load_scenes(path)
    scenes = scenes.model_copy(update={"scene": scenes.scene[3:4]})  # "are you an AI": passes on any in-world reply
    target = load_target(scenes, REPO_ROOT / "npc_profiles", path)
    async with OpenAIWireServer(faults=[HttpFault(404, "model 'double' not found")]) as server:
        llm = OpenAICompatLLM(server.base_url, "double", retry=RetryPolicy(retries=0))
        report = await run_eval(scenes, target, lambda _npc: llm, seeds=1, limits=PromptLimits(), scene_file=str(path))
        await llm.aclose()
    [run] = report.runs
    assert not run.passed and run.fallback
    assert run.reply == "That is guard business. Move along."  # Hilde's refusal line stood in
    assert run.failures[0].startswith("backend failed: openai LLM at http://127.0.0.1:")
    assert "HTTP 404" in run.failures[0]
