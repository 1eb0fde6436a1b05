"""CLI start-up benchmark: how long `npc-host --help`, `npc-host status --quiet` and `npc-host status` take, as
separate processes started the way a user or a compose health check starts them (< 30 s).

The aim (issue 15): `--help` and `status` well under half a second with every model runtime installed, because the
commands load lazily and nothing imports llama.cpp, faster-whisper or Piper to start. `status` asks the Redis hub at
NPC_HOST_REDIS_URL (default 127.0.0.1:6379, database 15, nothing written) about the example village's streams; the
full `status` also opens the store to show the advisor's recent passes, which `--quiet` (a health check) skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import summarize

RUNS = 7
REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "help": ["--help"],
    "status_quiet": ["status", "--quiet"],
    "status": ["status"],
}


def _environment(workdir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_HOST_")}
    env.update(
        NPC_HOST_REDIS_URL=os.environ.get("NPC_HOST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        NPC_HOST_PROFILES_DIR=str(REPO / "npc_profiles"),
        NPC_HOST_DATA_DIR=str(workdir / "data"),
        NPC_HOST_CONFIG=str(workdir / "npc-host.toml"),
        PYTHONPATH=str(REPO),
    )
    return env


def _wall_ms(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "host", *args], env=env, cwd=cwd, capture_output=True, check=False)
    took = (time.perf_counter() - started) * 1000.0
    if done.returncode != 0:
        raise RuntimeError(f"npc-host {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-300:]}")
    return took


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        workdir = Path(folder)
        env = _environment(workdir)
        _wall_ms(["status"], env, workdir)  # the store's first open creates its database: not a start-up cost
        results: dict[str, Any] = {}
        for name, args in COMMANDS.items():
            results[f"{name}_ms"] = summarize([_wall_ms(args, env, workdir) for _ in range(RUNS)], digits=0)
        bare = summarize([_wall_ms_python(env, workdir) for _ in range(RUNS)], digits=0)
        results["python_alone_ms"] = bare  # the interpreter's own start, for scale
        results["aim"] = "--help and status well under 500 ms"
        return results


def _wall_ms_python(env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, cwd=cwd, check=True)
    return (time.perf_counter() - started) * 1000.0
