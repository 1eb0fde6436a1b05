"""`npc-host run` and `npc-host status` as a user runs them: real processes, real Redis and PostgreSQL.

A wrong URL is one clear line and exit code 1, never a traceback or a password; SIGTERM of an idle host exits 0.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from host.bus import Bus, RedisBus, StreamKind, stream_name
from host.config import BusSettings, Settings
from host.errors import NpcHostError
from host.events import Event, PlayerSaid
from host.roles.services import HostServices
from tests.bus_support import consuming
from tests.host_process import Finished, HostProcess, closed_port, host_env, run_host

SECRET = "Hunter2-Very-Secret"
SAID = stream_name("example", StreamKind.SAID)


@pytest.fixture
def workdir(tmp_path: Path, repo_root: Path) -> Path:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    return tmp_path


@pytest_asyncio.fixture(loop_scope="function")
async def bus(redis_url: str, redis_prefix: str) -> AsyncIterator[Bus]:
    hub = RedisBus(redis_url, BusSettings(key_prefix=redis_prefix), client_name="test-run-cli")
    await hub.connect()
    yield hub
    await hub.aclose()


def _one_error_line(result: Finished) -> str:
    """The single line a failed command prints on stderr; nothing else there, and no secret anywhere."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 1, result
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"redis://:{SECRET}@127.0.0.1:{{port}}/0", "error: cannot use Redis at 127.0.0.1:{port}:"),
        (
            f"redis://:{SECRET}@127.0.0.1:notaport/0",
            "error: invalid Redis URL 'redis://:********@127.0.0.1:notaport/0'",
        ),
    ],
    ids=["refused", "malformed"],
)
async def test_a_wrong_redis_url_is_one_clear_line(workdir: Path, url: str, expected: str) -> None:
    port = closed_port()
    env = host_env(workdir, NPC_HOST_REDIS_URL=url.format(port=port))
    line = _one_error_line(await run_host(["run", "--roles", "brain"], env, workdir))
    assert line.startswith(expected.format(port=port)), line


async def test_a_database_that_does_not_exist_is_one_clear_line(workdir: Path, postgres_url: str) -> None:
    url = f"postgresql+asyncpg://postgres:{SECRET}@127.0.0.1:5432/npc_host_no_such_database"
    line = _one_error_line(await run_host(["run"], host_env(workdir, NPC_HOST_DATABASE_URL=url), workdir))
    assert line.startswith("error: cannot connect to "), line
    assert "npc_host_no_such_database" in line
    assert "does not exist" in line


async def test_a_database_nobody_listens_for_is_one_clear_line(workdir: Path) -> None:
    port = closed_port()
    url = f"postgresql+asyncpg://postgres:{SECRET}@127.0.0.1:{port}/npc"
    line = _one_error_line(await run_host(["run"], host_env(workdir, NPC_HOST_DATABASE_URL=url), workdir))
    assert line.startswith("error: cannot connect to "), line
    assert f"127.0.0.1:{port}" in line


async def test_a_database_that_fails_to_open_leaves_no_profile_watcher_running(workdir: Path) -> None:
    url = f"postgresql+asyncpg://postgres:{SECRET}@127.0.0.1:{closed_port()}/npc"
    settings = Settings(profiles_dir=workdir / "profiles", data_dir=workdir / "data", database_url=url)
    with pytest.raises(NpcHostError):
        await HostServices.open(settings)
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


async def test_running_only_the_brain_needs_redis(workdir: Path) -> None:
    line = _one_error_line(await run_host(["run", "--roles", "brain"], host_env(workdir), workdir))
    assert "NPC_HOST_REDIS_URL" in line


async def test_an_unknown_role_is_named(workdir: Path, redis_url: str) -> None:
    env = host_env(workdir, NPC_HOST_REDIS_URL=redis_url)
    line = _one_error_line(await run_host(["run", "--roles", "brain,barkeep"], env, workdir))
    assert "barkeep" in line


async def test_status_lists_streams_groups_consumers_pending_and_lag(
    workdir: Path, bus: Bus, redis_url: str, redis_prefix: str
) -> None:
    await bus.publish_many(SAID, [_said(f"line {n}") for n in range(3)])
    busy, release = asyncio.Event(), asyncio.Event()

    async def stuck(_: Event) -> None:
        busy.set()
        await release.wait()

    env = host_env(workdir, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)
    async with consuming(bus, SAID, "brain", "brain-test-1", stuck, batch=1):
        try:
            await asyncio.wait_for(busy.wait(), 20)
            result = await run_host(["status"], env, workdir)
        finally:
            release.set()

    assert result.code == 0, result
    rows = _table_rows(result.stdout)
    # One entry is being handled (pending), two wait for the group (lag).
    assert [SAID, "3", "brain", "brain-test-1 (1)", "1", "2", "0"] in rows
    turns = stream_name("example", StreamKind.TURNS)
    assert [turns, "0", "-", "-", "-", "-", "0"] in rows

    quiet = await run_host(["status", "--quiet"], env, workdir)
    assert (quiet.code, quiet.stdout) == (0, "")


async def test_status_before_any_host_ran_says_there_are_no_streams_yet(
    workdir: Path, redis_url: str, redis_prefix: str
) -> None:
    env = host_env(workdir, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)
    result = await run_host(["status"], env, workdir)
    assert result.code == 0, result
    rows = _table_rows(result.stdout)
    assert ["-", "-", "no process reported in the last 15 s", "-", ""] in rows
    assert ["no streams yet", "-", "-", "-", "-", "-", "-"] in rows


async def test_status_without_redis_says_what_to_set(workdir: Path) -> None:
    line = _one_error_line(await run_host(["status"], host_env(workdir), workdir))
    assert "NPC_HOST_REDIS_URL" in line


async def test_sigterm_stops_an_idle_host_with_exit_code_0(workdir: Path, hosts: list[HostProcess]) -> None:
    env = host_env(
        workdir, NPC_HOST_LLM__BACKEND="ollama", NPC_HOST_LLM__OLLAMA_URL=f"http://127.0.0.1:{closed_port()}"
    )
    host = HostProcess.start(["run"], env, workdir)
    hosts.append(host)
    await host.wait_output("running roles")
    host.signal(signal.SIGTERM)
    assert await host.wait_exit() == 0, host.output()


async def test_sigterm_stops_an_idle_brain_on_redis_with_exit_code_0(
    workdir: Path, bus: Bus, redis_url: str, redis_prefix: str, hosts: list[HostProcess]
) -> None:
    env = host_env(workdir, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)
    host = HostProcess.start(["run", "--roles", "brain"], env, workdir)
    hosts.append(host)
    await host.wait_consuming(bus, "example")
    host.signal(signal.SIGTERM)
    assert await host.wait_exit() == 0, host.output()
    assert await bus.pending(SAID, "brain") == []


def _said(text: str) -> PlayerSaid:
    return PlayerSaid(server="example", player="Alex", text=text)


def _table_rows(text: str) -> list[list[str]]:
    """The cells of each row of a rich table (rows drawn with `│`)."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
