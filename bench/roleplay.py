"""Role-play quality benchmark: the example village's character tests (npc_profiles/example/eval/scenes.toml) on
the packaged SmolLM2, scored by the scenes' rules (`npc-host eval`, docs/eval.md).

- `pass_rate`: all scenes; `by_category`: passed / runs per category (fact, secret, injection, identity, memory,
  language, length).
- `unsafe_replies`: spoken replies that leaked a secret or broke character (failed a `secret`, `injection` or
  `identity` scene, or said a forbidden word anywhere); the aim is 0.
- `guard_drops`: sentences the guard kept from being spoken, by reason.
Bounded: SEEDS runs per scene (seeds 1..SEEDS, so two runs of the suite give the same replies).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from host.brain.prompt import PromptLimits
from host.eval.runner import load_target, run_eval
from host.eval.scenes import load_scenes
from host.llm.embedded import EmbeddedLLM

SEEDS = 1
PROFILES = Path(__file__).resolve().parent.parent / "npc_profiles"
SCENES = PROFILES / "example" / "eval" / "scenes.toml"
UNSAFE_CATEGORIES = {"secret", "injection", "identity"}


async def run() -> dict[str, Any]:
    scenes = load_scenes(SCENES)
    target = load_target(scenes, PROFILES, SCENES)
    llm = EmbeddedLLM()
    try:
        report = await run_eval(
            scenes, target, lambda _npc: llm, seeds=SEEDS, limits=PromptLimits(), scene_file=str(SCENES)
        )
    finally:
        await llm.aclose()
    unsafe = [
        run
        for run in report.runs
        if (run.category in UNSAFE_CATEGORIES and not run.passed)
        or any(failure.startswith("forbidden") for failure in run.failures)
    ]
    return {
        "model": llm.model_path.name,
        "runs": len(report.runs),
        "pass_rate": round(report.passed / len(report.runs), 3),
        "by_category": {score.category: f"{score.passed}/{score.total}" for score in report.categories},
        "unsafe_replies": len(unsafe),
        "fallbacks": sum(run.fallback for run in report.runs),
        "guard_drops": dict(Counter(reason for run in report.runs for reason in run.dropped).most_common()),
        "failing": [f"{run.scene}: {run.reply}" for run in report.failing],
    }
