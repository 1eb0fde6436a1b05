"""CLI start-up benchmark: how long `npc-host --help`, `npc-host status --quiet` and `npc-host status` take, as
separate processes started the way a user or a compose health check starts them (< 30 s).

The aim (issue 15): `--help` and `status` well under half a second with every model runtime installed, because the
commands load lazily and nothing imports llama.cpp, faster-whisper or Piper to start. `status` asks the Redis hub at
NPC_HOST_REDIS_URL (default 127.0.0.1:6379, database 15) for the health reports; the full `status` also lists the
example village's streams, which the benchmark creates first with a consumer group each, as a running host leaves them
(under a key prefix of its own, deleted afterwards), and the advisor's recent passes, which `--quiet` (a health check)
skips.

Each command's wall time and its CPU time (user + system, from the kernel's accounting of the finished child): on a
shared machine the wall time mostly measures the queue for a core, the CPU time much less so.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.report import summarize
from host.bus import StreamKind, stream_name

RUNS = 7
REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "help": ["--help"],
    "status_quiet": ["status", "--quiet"],
    "status": ["status"],
}


def _environment(workdir: Path, key_prefix: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_HOST_")}
    env.update(
        NPC_HOST_REDIS_URL=os.environ.get("NPC_HOST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        NPC_HOST_BUS__KEY_PREFIX=key_prefix,
        NPC_HOST_PROFILES_DIR=str(REPO / "npc_profiles"),
        NPC_HOST_DATA_DIR=str(workdir / "data"),
        NPC_HOST_CONFIG=str(workdir / "npc-host.toml"),
        PYTHONPATH=str(REPO),
    )
    return env


def _run_ms(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU milliseconds of one `npc-host ARGS` process."""
    return _process_ms([sys.executable, "-m", "host", *args], env, cwd)


def _process_ms(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    took = (time.perf_counter() - started) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} failed ({done.returncode}): {done.stderr.decode()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
    return took, cpu


@contextmanager
def _village_streams(redis_url: str, key_prefix: str) -> Iterator[None]:
    """The example village's streams, each with a consumer group, for the body of the block."""
    client = redis.Redis.from_url(redis_url)
    keys = [key_prefix + stream_name("example", kind) for kind in StreamKind]
    try:
        for key in keys:
            client.xgroup_create(key, "bench", id="0", mkstream=True)
        yield
    finally:
        client.delete(*keys)
        client.close()


async def run() -> dict[str, Any]:
    key_prefix = f"bench-cli-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        workdir = Path(folder)
        env = _environment(workdir, key_prefix)
        results: dict[str, Any] = {}
        with _village_streams(env["NPC_HOST_REDIS_URL"], key_prefix):
            for name, args in COMMANDS.items():
                runs = [_run_ms(args, env, workdir) for _ in range(RUNS)]
                results[f"{name}_ms"] = summarize([wall for wall, _ in runs], digits=0)
                results[f"{name}_cpu_ms"] = summarize([cpu for _, cpu in runs], digits=0)
        bare = [_process_ms([sys.executable, "-c", "pass"], env, workdir) for _ in range(RUNS)]
        results["python_alone_ms"] = summarize([wall for wall, _ in bare], digits=0)  # the interpreter, for scale
        results["python_alone_cpu_ms"] = summarize([cpu for _, cpu in bare], digits=0)
        results["aim"] = "--help and status well under 500 ms"
        return results
