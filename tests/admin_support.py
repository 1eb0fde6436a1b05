"""A running host with the admin role for the admin tests: `npc-host run --roles brain,admin` on this test's Redis
key prefix, its LLM a wire double of Ollama (the one part that cannot run here in a way a test can read the prompt
of), users made with `npc-host admin create-user`, and helpers to sign in and to talk as a player.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis.asyncio

from host.bus import RedisBus, stream_for
from host.config import BusSettings
from host.events import PlayerSaid, Position
from host.store import Store
from tests.conftest import REDIS_HOST, REDIS_PORT, REPO_ROOT, require_service
from tests.doubles.ollama_server import OllamaWireServer
from tests.host_process import HostProcess, host_env

SERVER = "example"
PASSWORDS = {"ada": "ada-admin-pw", "otto": "otto-operator-pw", "vic": "vic-viewer-pw"}
ROLES = {"ada": "admin", "otto": "operator", "vic": "viewer"}
# Each player stands a block from one NPC, where nobody else answers (see npc_profiles/example).
NEAR = {"bram": ("Alex", Position(x=4.5, y=64.0, z=-2.5)), "birch": ("Kai", Position(x=1.5, y=64.0, z=9.5))}
WAIT_S = 60.0  # a bound for a loaded machine, never a speed check
_URL = re.compile(r"admin page at (http://127\.0\.0\.1:\d+/)")


def create_user(
    env: dict[str, str], workdir: Path, name: str, role: str, password: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host", "admin", "create-user", name, "--role", role],
        input=password + "\n",
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class AdminHost:
    url: str
    workdir: Path
    process: HostProcess
    bus: RedisBus
    llm: OllamaWireServer
    env: dict[str, str]

    @property
    def transcripts(self) -> Path:
        return self.workdir / "transcripts" / SERVER

    async def say(self, npc: str, text: str) -> PlayerSaid:
        """A player standing next to `npc` says `text` (as the gateway would publish a chat line)."""
        player, position = NEAR[npc]
        said = PlayerSaid(server=SERVER, player=player, text=text, position=position)
        await self.bus.publish(stream_for(said), said)
        return said

    def transcript_text(self) -> str:
        return "".join(path.read_text() for path in sorted(self.transcripts.glob("*.log")))

    async def wait_for(self, check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            outcome = check()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for: {what}\n{self.process.output()[-4000:]}")
            await asyncio.sleep(0.1)

    async def restart(self) -> None:
        """Stop the host (SIGTERM, as an operator would) and start it again on the same database and hub."""
        self.process.signal(signal.SIGTERM)
        await self.process.wait_exit()
        self.process, self.url = await start_host(
            ["run", "--roles", "brain,admin"], self.env, self.workdir, "restarted"
        )
        await self.process.wait_consuming(self.bus, SERVER)

    async def open_store(self) -> Store:
        return await Store.open(f"sqlite+aiosqlite:///{self.workdir / 'data' / 'npc-host.db'}")


@asynccontextmanager
async def signed_in(host: AdminHost, name: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client holding `name`'s session cookie, and the CSRF token to send with changes."""
    async with httpx.AsyncClient(base_url=host.url, timeout=30.0) as client:
        response = await client.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def admin_host(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AdminHost]:
    """One host per test module: starting it costs seconds, and the tests look at different NPCs and players."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    prefix = f"npc-host-test:{uuid.uuid4().hex[:12]}:"
    workdir = tmp_path_factory.mktemp("admin")
    shutil.copytree(REPO_ROOT / "npc_profiles" / "example", workdir / "profiles" / SERVER)
    # A different line each turn: the guard drops an NPC repeating its earlier reply.
    replies = [f"Aye, friend, the stew is hot and bowl {n} is yours." for n in range(500)]
    async with OllamaWireServer(replies=replies) as llm:
        env = host_env(
            workdir,
            NPC_HOST_REDIS_URL=redis_url,
            NPC_HOST_BUS__KEY_PREFIX=prefix,
            NPC_HOST_LLM__BACKEND="ollama",
            NPC_HOST_LLM__OLLAMA_URL=llm.url,
        )
        for name, role in ROLES.items():
            made = await asyncio.to_thread(create_user, env, workdir, name, role, PASSWORDS[name])
            assert made.returncode == 0, made.stderr
        bus = RedisBus(redis_url, BusSettings(key_prefix=prefix), client_name="test-admin")
        await bus.connect()
        host: AdminHost | None = None
        try:
            process, url = await start_host(["run", "--roles", "brain,admin"], env, workdir, "admin-host")
            host = AdminHost(url, workdir, process, bus, llm, env)
            await host.process.wait_consuming(bus, SERVER)
            yield host
        finally:
            if host is not None:
                host.process.stop_now()
            await bus.aclose()
            await _delete_keys(redis_url, prefix)


async def start_host(args: list[str], env: dict[str, str], workdir: Path, name: str) -> tuple[HostProcess, str]:
    """An `npc-host` process with the admin role, once it serves its page: the process and the page's URL."""
    process = HostProcess.start(args, env, workdir, name=name)
    try:
        deadline = time.monotonic() + WAIT_S
        while not (found := _URL.search(process.output())):
            process._check_alive("serving the admin page")
            assert time.monotonic() < deadline, process.output()
            await asyncio.sleep(0.1)
    except BaseException:
        process.stop_now()
        raise
    return process, found.group(1)


async def _delete_keys(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
