"""The memory guard: above its resident-memory ceiling the process is degraded (not down) in /healthz, /metrics and
`npc-host status`, and its bridge refuses newcomers with the reason; back under, all is as before."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import httpx
import pytest

from host.admin.app import create_app
from host.admin.context import AdminContext
from host.admin.sessions import SessionStore
from host.config import Settings
from host.memory_guard import MemoryGuard, ceiling_bytes, default_ceiling_bytes, resident_bytes
from host.roles.health import HealthBoard, RoleState
from host.roles.services import HostServices
from proximity_audio.bridge_client import BridgeClient, BridgeRefusedError
from proximity_audio.protocol import CloseCode
from tests.host_process import HostProcess, closed_port, host_env, run_host

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory is read from /proc")

TOKEN = "a-bridge-token-for-the-memory-test"
HUGE = 2**50  # a ceiling no process reaches


def test_the_ceiling_defaults_to_most_of_the_memory_the_process_may_use() -> None:
    ram = Path("/proc/meminfo").read_text().split()[1]  # "MemTotal: <kB> kB"
    default = default_ceiling_bytes()
    assert default is not None and 0 < default <= int(ram) * 1024 * 0.8 + 4096
    assert ceiling_bytes(None) == default
    assert ceiling_bytes(512) == 512 * 2**20
    assert ceiling_bytes(0) is None  # 0: no ceiling at all


def test_refusing_ends_only_clearly_under_the_ceiling() -> None:
    """A process hovering at its ceiling does not flip in and out (and log each time) every second."""
    resident = resident_bytes()
    assert resident is not None
    guard = MemoryGuard(resident // 2)
    guard.check()
    assert guard.over
    guard.ceiling = int(resident / 0.98)  # under the ceiling now, but within 5% of it: still refusing
    guard.check()
    assert guard.over
    guard.ceiling = int(resident / 0.8)
    guard.check()
    assert not guard.over and guard.refusal() is None


async def test_over_the_ceiling_healthz_says_degraded_not_down_and_recovers(tmp_path: Path, repo_root: Path) -> None:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    settings = Settings(
        profiles_dir=tmp_path / "profiles", data_dir=tmp_path / "data", transcripts_dir=tmp_path / "transcripts"
    )
    services = await HostServices.open(settings, watch_profiles=False)
    board = HealthBoard("test-process")
    board.set("gateway", RoleState.RUNNING)
    guard = MemoryGuard(2**20, board=board)  # 1 MB: this process is far above it
    app = create_app(
        AdminContext(services, board.report, SessionStore(services.store.admin_sessions, 3600)), page=False
    )
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://health") as http:
            guard.check()
            degraded = await http.get("/healthz")
            assert degraded.status_code == 200
            body = degraded.json()
            assert body["status"] == "degraded" and body["roles"] == {"gateway": "running"}
            assert "short of memory" in body["degraded"]["memory"] and "ceiling 1 MB" in body["degraded"]["memory"]
            metrics = (await http.get("/metrics")).text
            assert "npc_host_memory_ceiling_bytes 1.048576e+06" in metrics
            resident = resident_bytes()
            assert resident is not None and guard.resident is not None and guard.resident > 2**20

            guard.ceiling = HUGE
            guard.check()
            recovered = (await http.get("/healthz")).json()
            assert recovered["status"] == "ok" and recovered["degraded"] == {}
            assert guard.refusal() is None
    finally:
        await services.aclose()


async def test_a_host_over_its_ceiling_refuses_plugins_and_status_shows_it_degraded(
    tmp_path: Path, repo_root: Path, redis_url: str, redis_prefix: str, hosts: list[HostProcess]
) -> None:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    bridge_port, web_port = closed_port(), closed_port()
    env = host_env(
        tmp_path,
        NPC_HOST_REDIS_URL=redis_url,
        NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
        NPC_HOST_BRIDGE_PORT=str(bridge_port),
        NPC_HOST_ADMIN_PORT=str(web_port),
        NPC_HOST_BRIDGE_TOKEN_EXAMPLE=TOKEN,
        NPC_HOST_MEMORY_CEILING_MB="1",  # every process is above it
        MINECRAFT_RCON_PORT=str(closed_port()),
    )
    host = HostProcess.start(["run", "--roles", "gateway"], env, tmp_path)
    hosts.append(host)
    await host.wait_output("ready in ")
    await host.wait_output("above the ceiling")

    with pytest.raises(BridgeRefusedError) as refused:
        async with BridgeClient(f"ws://127.0.0.1:{bridge_port}/bridge", server="example", token=TOKEN) as plugin:
            await plugin.connect()
    assert refused.value.code == CloseCode.TRY_AGAIN_LATER and "short of memory" in refused.value.reason

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}") as http:
        health = await http.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "degraded" and "ceiling 1 MB" in health.json()["degraded"]["memory"]
        metrics = (await http.get("/metrics")).text
        assert 'npc_host_memory_refused_total{what="connection"} 1.0' in metrics

    status = await run_host(["status"], env, tmp_path, timeout_s=240)  # a CLI start takes a minute on a busy machine
    assert status.code == 0, status  # degraded is not failed
    (row,) = [line for line in status.stdout.splitlines() if "degraded" in line]
    assert "memory" in row and "short of memory" in row

    host.signal(signal.SIGTERM)
    assert await host.wait_exit() == 0, host.output()
    assert host.output().count("above the ceiling") == 1  # logged once, not once a second
    assert "memory: refused a new connection" in host.output()
