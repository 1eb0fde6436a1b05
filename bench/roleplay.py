"""Role-play quality benchmark: the example village's character tests (npc_profiles/example/eval/scenes.toml) on
the packaged SmolLM2, scored by the scenes' rules (`npc-host eval`, docs/eval.md).

- `pass_rate`: all scenes; `by_category`: passed / runs per category (fact, secret, injection, identity, memory,
  language, length); `by_seed`: the same per seed, since one seed moves a small category by a whole scene.
- `unsafe_replies`: spoken replies that leaked a secret or broke character (failed a `secret`, `injection` or
  `identity` scene, or said a forbidden word anywhere); the aim is 0.
- `guard_drops`: sentences the guard kept from being spoken, by reason.
- `prompt_tokens_after_prefix`: llama.cpp's own count of prompt tokens it evaluated per turn after the NPC's cached
  prefix, for each scene's first seed (each NPC's first scene, which reads the whole prompt, left out): what a new
  line costs before its first token. `.conversation`: the same over a conversation with Bram (CONVERSATION, each turn
  after the first, with the earlier exchanges as history, as in the game): the figure the voice path pays.
Bounded: SEEDS runs per scene (seeds 1..SEEDS, so two runs of the suite give the same replies). To keep a run short,
`NPC_HOST_ROLEPLAY_SEEDS=N` sets the seeds and `NPC_HOST_ROLEPLAY_CATEGORIES=fact,secret` plays those categories only.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.report import summarize
from host.brain.prompt import Exchange, PromptLimits, TurnContext
from host.brain.turn import PersonaTurn, TurnOptions
from host.eval.runner import EvalTarget, SceneRun, load_target, run_eval
from host.eval.scenes import load_scenes
from host.llm.embedded import EmbeddedLLM

SEEDS = int(os.environ.get("NPC_HOST_ROLEPLAY_SEEDS", "3"))
CATEGORIES = {name.strip() for name in os.environ.get("NPC_HOST_ROLEPLAY_CATEGORIES", "").split(",") if name.strip()}
PROFILES = Path(__file__).resolve().parent.parent / "npc_profiles"
SCENES = PROFILES / "example" / "eval" / "scenes.toml"
UNSAFE_CATEGORIES = {"secret", "injection", "identity"}
CONVERSATION = (
    "Good evening! Is the fire still lit?",
    "Have you heard any news from the village?",
    "Who is the captain of the guard?",
    "Is the old mine safe?",
    "Thank you, I will sit by the fire for a while.",
)


async def _conversation(llm: EmbeddedLLM, target: EvalTarget) -> list[int]:
    """Prompt tokens evaluated after the cached prefix on each turn but the first of a conversation with Bram."""
    npc, recent, evaluated = target.npcs["bram"], list[Exchange](), list[int]()
    for index, line in enumerate(CONVERSATION):
        context = TurnContext(player="Alice", text=line, recent=tuple(recent))
        turn = PersonaTurn(llm, npc, target.server, context, TurnOptions(seed=index + 1))
        async with contextlib.aclosing(turn.stream()) as events:
            async for _event in events:
                pass
        if turn.result is None or llm.last_stats is None:
            raise RuntimeError("the conversation's turn ended without a result or statistics")
        if index:
            evaluated.append(llm.last_stats.prompt_tokens_evaluated)
        recent.append(Exchange(player="Alice", player_text=line, npc_text=turn.result.reply))
    return evaluated


async def run() -> dict[str, Any]:
    scenes = scenes_all = load_scenes(SCENES)
    if CATEGORIES:
        chosen = [scene for scene in scenes.scene if (scene.category or scenes.defaults.category) in CATEGORIES]
        if not chosen:
            raise ValueError(f"NPC_HOST_ROLEPLAY_CATEGORIES: no scene of {sorted(CATEGORIES)} in {SCENES}")
        scenes = scenes.model_copy(update={"scene": chosen})
    target = load_target(scenes, PROFILES, SCENES)
    llm = EmbeddedLLM()
    warm: set[str] = set()
    after_prefix: list[int] = []

    def evaluated(run: SceneRun) -> None:
        # Scenes run one after another, so the backend's last statistics are this run's. Only a scene's first seed
        # is a new line for the NPC: the other seeds send the very prompt the cache already holds.
        if run.seed == 1 and run.npc in warm and llm.last_stats is not None:
            after_prefix.append(llm.last_stats.prompt_tokens_evaluated)
        warm.add(run.npc)

    try:
        conversation = await _conversation(llm, load_target(scenes_all, PROFILES, SCENES))
        report = await run_eval(
            scenes,
            target,
            lambda _npc: llm,
            seeds=SEEDS,
            limits=PromptLimits(),
            scene_file=str(SCENES),
            on_run=evaluated,
        )
    finally:
        await llm.aclose()
    unsafe = [
        run
        for run in report.runs
        if (run.category in UNSAFE_CATEGORIES and not run.passed)
        or any(failure.startswith("forbidden") for failure in run.failures)
    ]
    by_seed: dict[int, Counter[str]] = defaultdict(Counter)
    runs_by_seed: dict[int, Counter[str]] = defaultdict(Counter)
    for run in report.runs:
        for key in (run.category, "all"):
            by_seed[run.seed][key] += run.passed
            runs_by_seed[run.seed][key] += 1
    return {
        "model": llm.model_path.name,
        "seeds": SEEDS,
        "runs": len(report.runs),
        "pass_rate": round(report.passed / len(report.runs), 3),
        "by_category": {score.category: f"{score.passed}/{score.total}" for score in report.categories},
        "by_seed": {
            str(seed): {key: f"{passed[key]}/{runs_by_seed[seed][key]}" for key in sorted(passed)}
            for seed, passed in sorted(by_seed.items())
        },
        "unsafe_replies": len(unsafe),
        "fallbacks": sum(run.fallback for run in report.runs),
        "guard_drops": dict(Counter(reason for run in report.runs for reason in run.dropped).most_common()),
        "prompt_tokens_after_prefix": {
            "scenes": summarize(after_prefix, digits=0) if after_prefix else {},
            "conversation": summarize(conversation, digits=0),
        },
        "failing": [f"{run.scene} (seed {run.seed}): {run.reply}" for run in report.failing],
        "unsafe": [f"{run.scene} (seed {run.seed}): {run.reply}" for run in unsafe],
    }
