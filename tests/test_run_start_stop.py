"""`npc-host run` as an operator sees it: one ready line naming what listens where, a stop signal honoured within
about two seconds even while the embedded model warms the personas, and log lines that stay one line per record."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.host_process import HostProcess, closed_port, host_env

# Under a loaded 2-core machine the process needs scheduling time beyond the host's own 1.9 s deadline.
STOP_BOUND_S = 4.0
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


@pytest.fixture
def workdir(tmp_path: Path, repo_root: Path) -> Path:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    return tmp_path


async def _time_to_exit(host: HostProcess) -> tuple[int, float]:
    signalled = time.monotonic()
    host.signal(signal.SIGTERM)
    code = await host.wait_exit()
    return code, time.monotonic() - signalled


async def test_the_ready_line_names_the_bridge_and_web_addresses(
    workdir: Path, redis_url: str, redis_prefix: str, hosts: list[HostProcess]
) -> None:
    bridge_port, web_port = closed_port(), closed_port()
    env = host_env(
        workdir,
        NPC_HOST_REDIS_URL=redis_url,
        NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
        NPC_HOST_LLM__BACKEND="ollama",
        NPC_HOST_LLM__OLLAMA_URL=f"http://127.0.0.1:{closed_port()}",
        NPC_HOST_BRIDGE_PORT=str(bridge_port),
        NPC_HOST_ADMIN_PORT=str(web_port),
        NPC_HOST_BRIDGE_TOKEN_EXAMPLE="a-bridge-token-for-the-test",
        MINECRAFT_RCON_PORT=str(closed_port()),
    )
    host = HostProcess.start(["run", "--roles", "gateway,brain"], env, workdir)
    hosts.append(host)
    await host.wait_output("ready in ")
    (ready,) = [line for line in host.output().splitlines() if "ready in " in line]
    assert f"bridge ws://127.0.0.1:{bridge_port}/bridge" in ready
    assert f"health and metrics http://127.0.0.1:{web_port}/" in ready
    # Nobody else listens there: the ports named are the host's own.
    _reader, writer = await asyncio.open_connection("127.0.0.1", bridge_port)
    writer.close()
    code, _ = await _time_to_exit(host)
    assert code == 0, host.output()
    # Without a terminal every record is one line of the plain format (no wrapping, no rich boxes).
    lines = [line for line in host.output().splitlines() if line.strip()]
    assert all(LOG_LINE.match(line) for line in lines), host.output()


async def test_sigterm_during_the_persona_warm_up_exits_within_two_seconds(
    workdir: Path, redis_url: str, redis_prefix: str, hosts: list[HostProcess]
) -> None:
    env = host_env(workdir, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)
    host = HostProcess.start(["run", "--roles", "brain"], env, workdir)
    hosts.append(host)
    await host.wait_output("warming the persona prefixes")
    assert "warmed " not in host.output(), "the warm-up ended before the signal; nothing was tested"
    code, took = await _time_to_exit(host)
    assert code == 0, host.output()
    assert took < STOP_BOUND_S, f"exit took {took:.1f} s:\n{host.output()}"
