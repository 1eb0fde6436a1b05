"""Playing scenes against NPCs: each scene once per seed, through the same persona turn (prompt, guard) the game
uses, scored by `checks.failed_rules`; the report groups pass rates by category and keeps every failing reply."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, computed_field

from host.brain.prompt import Exchange, PromptLimits, TurnContext
from host.brain.turn import PersonaTurn, TurnOptions
from host.eval.checks import failed_rules
from host.eval.scenes import Scene, SceneFile, SceneFileError
from host.llm.base import LLM
from host.profiles.loader import load_all
from host.profiles.schema import NpcProfile, ServerProfile

LlmFor = Callable[[NpcProfile], LLM]


class SceneRun(BaseModel):
    scene: str
    category: str
    npc: str
    seed: int
    line: str
    reply: str
    passed: bool
    failures: list[str]
    dropped: list[str] = []  # the guard's reasons, one per dropped sentence (never the dropped text: it may leak)
    fallback: bool = False
    error: str | None = None


class CategoryScore(BaseModel):
    category: str
    passed: int
    total: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


class EvalReport(BaseModel):
    scene_file: str
    backend: str
    seeds: int
    runs: list[SceneRun]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def categories(self) -> list[CategoryScore]:
        scores: dict[str, CategoryScore] = {}
        for run in self.runs:
            score = scores.setdefault(run.category, CategoryScore(category=run.category, passed=0, total=0))
            score.passed += int(run.passed)
            score.total += 1
        return sorted(scores.values(), key=lambda score: score.category)

    @property
    def passed(self) -> int:
        return sum(run.passed for run in self.runs)

    @property
    def failing(self) -> list[SceneRun]:
        return [run for run in self.runs if not run.passed]


@dataclass
class EvalTarget:
    """The profiles a scene file plays against."""

    server: ServerProfile
    npcs: dict[str, NpcProfile] = field(default_factory=dict)


def load_target(scenes: SceneFile, profiles_dir: Path, path: Path) -> EvalTarget:
    """The scene file's server and NPCs, loaded from the profiles folder; a missing one is an error naming it."""
    load = next((load for load in load_all(profiles_dir) if load.server and load.server.name == scenes.server), None)
    if load is None or load.server is None:
        raise SceneFileError(f"{path}: server {scenes.server!r} not found under {profiles_dir}")
    missing = sorted({scene.npc for scene in scenes.scene} - set(load.npcs))
    if missing:
        problems = "; ".join(str(problem) for problem in load.problems)
        detail = f" (profile problems: {problems})" if problems else ""
        raise SceneFileError(f"{path}: no NPC {', '.join(map(repr, missing))} on server {scenes.server!r}{detail}")
    return EvalTarget(load.server, dict(load.npcs))


async def run_scene(
    llm: LLM,
    npc: NpcProfile,
    server: ServerProfile,
    scenes: SceneFile,
    scene: Scene,
    *,
    seed: int,
    limits: PromptLimits,
) -> SceneRun:
    defaults = scenes.defaults
    player = scene.player or defaults.player
    context = TurnContext(
        player=player,
        text=scene.line,
        recent=tuple(Exchange(player=player, player_text=turn.player, npc_text=turn.npc) for turn in scene.history),
    )
    turn = PersonaTurn(llm, npc, server, context, TurnOptions(limits=limits, seed=seed))
    async with contextlib.aclosing(turn.stream()) as events:
        async for _event in events:
            pass
    result = turn.result
    if result is None:  # stream() always sets it before it ends
        raise RuntimeError(f"scene {scene.name!r}: the turn ended without a result")
    # A refusal-line fallback is scored like any reply: it passes a secret scene and fails a fact scene.
    failures = failed_rules(scene, defaults, result.reply, len(result.sentences))
    if result.error is not None:  # the refusal line stood in for a reply the backend never gave
        failures.insert(0, f"backend failed: {result.error}")
    return SceneRun(
        scene=scene.name,
        category=scene.category or defaults.category,
        npc=npc.id,
        seed=seed,
        line=scene.line,
        reply=result.reply,
        passed=not failures,
        failures=failures,
        dropped=[dropped.reason for dropped in result.dropped],
        fallback=result.fallback,
        error=result.error,
    )


async def run_eval(
    scenes: SceneFile,
    target: EvalTarget,
    llm_for: LlmFor,
    *,
    seeds: int,
    limits: PromptLimits,
    scene_file: str,
    on_run: Callable[[SceneRun], None] | None = None,
) -> EvalReport:
    """Every scene once per seed 1..`seeds`, in file order; `on_run` hears of each run as it ends."""
    runs: list[SceneRun] = []
    backend = ""
    for scene in scenes.scene:
        npc = target.npcs[scene.npc]
        llm = llm_for(npc)
        backend = backend or llm.name
        for seed in range(1, seeds + 1):
            run = await run_scene(llm, npc, target.server, scenes, scene, seed=seed, limits=limits)
            runs.append(run)
            if on_run is not None:
                on_run(run)
    return EvalReport(scene_file=scene_file, backend=backend, seeds=seeds, runs=runs)
