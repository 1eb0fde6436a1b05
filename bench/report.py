"""Summaries, tables and `bench/results.json` for the benchmark suites (the contract is in `bench/__init__.py`)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def summarize(samples: Sequence[float], digits: int = 1) -> dict[str, float | int]:
    """Median, 95th percentile, min and max of the samples, and how many there were."""
    if not samples:
        raise ValueError("no samples to summarize")
    ordered = sorted(samples)
    p95 = statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 else ordered[0]
    return {
        "median": round(statistics.median(ordered), digits),
        "p95": round(p95, digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
        "n": len(ordered),
    }


def machine_info() -> dict[str, Any]:
    """What the numbers depend on; the load average matters on shared development machines."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flatten(results: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`{"a": {"b": 1}}` as `("a.b", 1)`, for one table row per measured value."""
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def print_table(console: Console, suite: str, results: dict[str, Any], seconds: float) -> None:
    table = Table(title=f"{suite} ({seconds:.1f} s)", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in flatten(results):
        table.add_row(name, json.dumps(value) if isinstance(value, list) else str(value))
    console.print(table)


def merge_results(suite_results: dict[str, dict[str, Any]], path: Path = RESULTS_PATH) -> None:
    """Replace the sections of the suites that ran; keep every other suite's section as it was."""
    document: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); fix or delete it") from exc
        if isinstance(loaded, dict):
            document = loaded
    machine = machine_info()
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    for suite, results in suite_results.items():
        document[suite] = {"measured_at": measured_at, "machine": machine, "results": results}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(dict(sorted(document.items())), indent=2) + "\n")
    temporary.replace(path)
