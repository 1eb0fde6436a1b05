"""`python -m bench [SUITE ...]`: run benchmark suites, print their tables, merge their results into results.json."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import sys
import time
from typing import Any

from rich.console import Console

import bench
from bench.report import RESULTS_PATH, merge_results, print_table

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

NOT_SUITES = {"report"}


def available_suites() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_") and m.name not in NOT_SUITES
    )


async def run_suites(names: list[str], console: Console) -> tuple[dict[str, dict[str, Any]], list[str]]:
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name in names:
        console.print(f"[bold]running {name}[/bold] ...")
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            outcome = await module.run()
        except Exception as exc:
            console.print(f"[red]{name} failed:[/red] {type(exc).__name__}: {exc}")
            failed.append(name)
            continue
        if not isinstance(outcome, dict):
            console.print(f"[red]{name} failed:[/red] run() returned {type(outcome).__name__}, not a dict")
            failed.append(name)
            continue
        results[name] = outcome
        print_table(console, name, outcome, time.perf_counter() - started)
    return results, failed


def main(argv: list[str]) -> int:
    console = Console()
    suites = available_suites()
    unknown = [name for name in argv if name not in suites]
    if unknown:
        console.print(f"[red]unknown suite(s):[/red] {', '.join(unknown)}; available: {', '.join(suites)}")
        return 2
    results, failed = asyncio.run(run_suites(argv or suites, console))
    if results:
        merge_results(results)
        console.print(f"results of {', '.join(results)} written to {RESULTS_PATH}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
