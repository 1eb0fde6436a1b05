"""Shared fixtures: real Redis and PostgreSQL from the machine, started by `make test` (scripts/ensure-services.sh).

A test that needs a service skips with the reason when it cannot be reached, except under
NPC_HOST_REQUIRE_SERVICES=1 (CI), where a missing service fails the run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.host_process import HostProcess

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# The packaged model's converted weights (host/llm/packaged_weights.py) go to a cache of this run, not the user's:
# set before any host module is imported, and inherited by the host processes the tests start.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="npc-host-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)  # 138 MB a run

# The `llama_server` fixture (a real llama_cpp.server), shared by the OpenAI backend's and the advisor's tests.
pytest_plugins = ["tests.llama_server"]

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _answers(host, port):
        return
    reason = f"{name} is not answering on {host}:{port} (run scripts/ensure-services.sh)"
    if os.environ.get("NPC_HOST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"NPC_HOST_REQUIRE_SERVICES=1: {reason}")
    pytest.skip(reason)  # only reached without NPC_HOST_REQUIRE_SERVICES=1


@pytest.fixture
def redis_url() -> str:
    """A Redis URL on the machine's server; pair it with `redis_prefix` so tests never share keys."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    prefix = f"npc-host-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    return POSTGRES_URL


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def hosts() -> Iterator[list[HostProcess]]:
    """`npc-host` processes a test starts (append them): stopped at once when it ends, whatever happened."""
    started: list[HostProcess] = []
    yield started
    for host in started:
        host.stop_now()
