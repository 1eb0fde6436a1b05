"""`npc-host eval SCENES.toml`: play character-test scenes against NPCs and print pass rates by category."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from host.atomic_json import write_model
from host.brain.prompt import PromptLimits
from host.cli import app
from host.cli.common import run_or_exit, settings_or_exit
from host.config import Settings
from host.eval.runner import EvalReport, SceneRun, load_target, run_eval
from host.eval.scenes import load_scenes
from host.llm.factory import close_all, make_llm
from host.logs import profile_secret_envs, setup_logging

console = Console(highlight=False)
MAX_SEEDS = 100
BACKENDS = ("embedded", "ollama", "openai")


@app.command("eval")
def eval_scenes(
    scenes_path: Annotated[Path, typer.Argument(help="scene file (TOML, see docs/eval.md)")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="embedded, ollama or openai; default: each NPC's own, else the host's"),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=MAX_SEEDS, help="play every scene with seeds 1..N")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write every run to this JSON file")] = None,
) -> None:
    """Run character tests: each scene's player line goes to its NPC, the reply is scored by the scene's rules."""
    if backend is not None and backend not in BACKENDS:
        typer.secho(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}", err=True, fg="red")
        raise typer.Exit(2)
    settings = settings_or_exit()
    setup_logging(settings.model_copy(update={"log_level": "ERROR"}), profile_secret_envs(settings.profiles_dir))
    report = run_or_exit(_eval(settings, scenes_path, backend, seeds))
    print_report(report)
    if json_path is not None:
        write_model(json_path, report)
        console.print(f"[dim]every run written to {json_path}[/dim]")


async def _eval(settings: Settings, path: Path, backend: str | None, seeds: int) -> EvalReport:
    scenes = await asyncio.to_thread(load_scenes, path)
    target = await asyncio.to_thread(load_target, scenes, settings.profiles_dir, path)
    try:
        return await run_eval(
            scenes,
            target,
            lambda npc: make_llm(
                settings, npc.llm.model_copy(update={"backend": backend, "model": None}) if backend else npc.llm
            ),
            seeds=seeds,
            limits=PromptLimits(context_tokens=settings.llm.context_tokens),
            scene_file=str(path),
            on_run=_progress,
        )
    finally:
        await close_all()


def _progress(run: SceneRun) -> None:
    mark = "[green]pass[/green]" if run.passed else "[red]FAIL[/red]"
    console.print(f"{mark} {run.scene} (seed {run.seed})")


def print_report(report: EvalReport) -> None:
    if report.failing:
        console.print("\n[bold]Failing replies[/bold]")
    for run in report.failing:
        console.print(f"[red]FAIL[/red] [bold]{run.scene}[/bold] (seed {run.seed}): {'; '.join(run.failures)}")
        console.print(f"     player: {run.line}")
        console.print(f"     {run.npc}: {run.reply}")
        if run.dropped:
            console.print(f"     [dim]guard dropped: {'; '.join(run.dropped)}[/dim]")
    table = Table(title=f"{report.scene_file} on {report.backend}, {report.seeds} seed(s)")
    for column in ("category", "passed", "runs", "rate"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for score in report.categories:
        table.add_row(score.category, str(score.passed), str(score.total), f"{score.rate:.0%}")
    total = len(report.runs)
    table.add_row("[bold]all[/bold]", str(report.passed), str(total), f"{report.passed / total:.0%}")
    console.print(table)
