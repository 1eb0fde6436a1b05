"""A role is never half alive: a role whose task fails is logged with its error, shown as failed by `/healthz` and
`npc-host status`, and takes the process down (exit code 1) after the other roles drained.

Before, a speech role's task group was left with one failed task: nothing consumed, every turn end dead-lettered with
"TaskGroup ... is shutting down", and the error that started it never logged.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import httpx
import pytest

from host.admin.app import create_app
from host.admin.context import AdminContext
from host.admin.sessions import SessionStore
from host.config import BusSettings, Settings
from host.roles import runner
from host.roles.health import HealthBoard, RoleState
from host.roles.runner import RoleFailedError, supervise
from host.roles.services import HostServices
from tests.host_process import host_env, run_host


class FailingRole:
    """A role shaped like the real ones: consumers in a task group, one of whose tasks fails after a moment."""

    name = "speech"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(stop.wait())
            tasks.create_task(self._fail())
            self.started.set()
            await stop.wait()

    async def _fail(self) -> None:
        await asyncio.sleep(0.05)
        raise OSError(24, "Too many open files")


class SteadyRole:
    name = "brain"

    def __init__(self) -> None:
        self.drained = False

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.drained = True


async def test_a_failed_role_task_is_logged_in_full_and_marked_failed(caplog: pytest.LogCaptureFixture) -> None:
    board = HealthBoard("test-process")
    with pytest.raises(RoleFailedError, match="role speech failed: OSError"):
        await asyncio.wait_for(supervise(FailingRole(), asyncio.Event(), board), 20)
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "role speech failed" in record.getMessage() and "Too many open files" in record.getMessage()
    assert record.exc_info is not None  # the traceback of where it happened
    (role,) = board.report().roles
    assert role.state is RoleState.FAILED and role.error is not None and "Too many open files" in role.error
    assert not board.report().healthy


async def test_a_role_that_ends_on_its_own_is_a_failure_too() -> None:
    board = HealthBoard("test-process")
    stop = asyncio.Event()
    with pytest.raises(RoleFailedError, match="ended before the stop signal"):
        await supervise(SteadyRoleThatQuits(), stop, board)
    assert board.report().roles[0].state is RoleState.FAILED


class SteadyRoleThatQuits:
    name = "gateway"

    async def run(self, stop: asyncio.Event) -> None:
        return


async def test_healthz_answers_503_while_a_role_is_down_and_200_while_all_run(tmp_path: Path, repo_root: Path) -> None:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    settings = Settings(
        profiles_dir=tmp_path / "profiles", data_dir=tmp_path / "data", transcripts_dir=tmp_path / "transcripts"
    )
    services = await HostServices.open(settings, watch_profiles=False)
    board = HealthBoard("test-process")
    app = create_app(
        AdminContext(services, board.report, SessionStore(services.store.admin_sessions, 3600)), page=False
    )
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://health") as http:
            board.set("brain", RoleState.RUNNING)
            board.set("speech", RoleState.RUNNING)
            ok = await http.get("/healthz")
            assert ok.status_code == 200 and ok.json()["roles"] == {"brain": "running", "speech": "running"}
            board.set("speech", RoleState.FAILED, "OSError: [Errno 24] Too many open files")
            down = await http.get("/healthz")
            assert down.status_code == 503
            assert down.json()["roles"] == {
                "brain": "running",
                "speech": "failed: OSError: [Errno 24] Too many open files",
            }
    finally:
        await services.aclose()


async def test_a_failing_role_stops_the_process_and_status_reports_it(
    tmp_path: Path, repo_root: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    settings = Settings(
        profiles_dir=tmp_path / "profiles",
        data_dir=tmp_path / "data",
        transcripts_dir=tmp_path / "transcripts",
        redis_url=redis_url,
        bus=BusSettings(key_prefix=redis_prefix),
        admin_port=0,
    )
    steady = SteadyRole()
    monkeypatch.setattr(runner, "build_roles", lambda services, names, server: [FailingRole(), steady])
    with pytest.raises(RoleFailedError):
        await asyncio.wait_for(runner.run_roles(settings, ["speech", "brain"]), 60)
    assert steady.drained  # the other role was stopped, not left running beside a dead one

    env = host_env(tmp_path, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)
    result = await run_host(["status"], env, tmp_path, timeout_s=240)  # a CLI start takes a minute on a busy machine
    assert result.code == 1, result
    assert "failed" in result.stdout and "speech" in result.stdout
    assert "role speech of" in result.stderr and "Too many open files" in result.stderr
    quiet = await run_host(["status", "--quiet"], env, tmp_path, timeout_s=240)
    assert (quiet.code, quiet.stdout, quiet.stderr) == (1, "", "")
