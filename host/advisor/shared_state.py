"""What advisor passes share across processes: the digest cache, the one-pass-per-server lock and the latest passes'
summaries (for `npc-host status`, which reads them without opening the database).

With the hub on Redis both live there (every advisor process sees them); otherwise they live in this process. Keys
carry the hub's `key_prefix`, so hosts sharing one Redis stay apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as redis

from host.advisor.pass_summary import PassSummary

log = logging.getLogger(__name__)

DIGEST_TTL_S = 7 * 24 * 3600
MEMORY_DIGESTS = 4096
RECENT_PASSES = 20  # summaries kept for `npc-host status`; the store keeps every pass
# Releases the lock only if it is still ours: a pass that outlived its lease must not free another process's lock.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class PassBusyError(Exception):
    """Another pass of this server is running (in this process or another)."""


class SharedState(Protocol):
    async def digest(self, key: str) -> str | None: ...

    async def keep_digest(self, key: str, digest: str) -> None: ...

    def pass_lock(self, server: str, lease_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Held for one pass; raises PassBusyError at once when another pass of `server` holds it."""
        ...

    async def remember_pass(self, summary: PassSummary) -> None: ...

    async def recent_passes(self, limit: int = 10) -> list[PassSummary]:
        """The latest passes' summaries, newest first."""
        ...

    async def aclose(self) -> None: ...


class LocalState:
    """In-process cache (least recently used dropped past `MEMORY_DIGESTS`) and locks."""

    def __init__(self) -> None:
        self._digests: OrderedDict[str, str] = OrderedDict()
        self._running: set[str] = set()
        self._passes: deque[PassSummary] = deque(maxlen=RECENT_PASSES)

    async def digest(self, key: str) -> str | None:
        found = self._digests.get(key)
        if found is not None:
            self._digests.move_to_end(key)
        return found

    async def keep_digest(self, key: str, digest: str) -> None:
        self._digests[key] = digest
        self._digests.move_to_end(key)
        while len(self._digests) > MEMORY_DIGESTS:
            self._digests.popitem(last=False)

    @contextlib.asynccontextmanager
    async def pass_lock(self, server: str, lease_s: float) -> AsyncIterator[None]:
        if server in self._running:
            raise PassBusyError(f"an advisor pass of '{server}' is already running in this process")
        self._running.add(server)
        try:
            yield
        finally:
            self._running.discard(server)

    async def remember_pass(self, summary: PassSummary) -> None:
        self._passes.appendleft(summary)

    async def recent_passes(self, limit: int = 10) -> list[PassSummary]:
        return list(self._passes)[:limit]

    async def aclose(self) -> None:
        return None


class RedisState:
    """Digests as Redis strings with a TTL; the lock is `SET NX PX` with a random token, renewed while held."""

    def __init__(self, url: str, key_prefix: str = "") -> None:
        self._client: redis.Redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._prefix = f"{key_prefix}npc-host:advisor:"

    async def digest(self, key: str) -> str | None:
        value = await self._client.get(f"{self._prefix}digest:{key}")
        return value.decode() if isinstance(value, bytes) else None

    async def keep_digest(self, key: str, digest: str) -> None:
        await self._client.set(f"{self._prefix}digest:{key}", digest.encode(), ex=DIGEST_TTL_S)

    @contextlib.asynccontextmanager
    async def pass_lock(self, server: str, lease_s: float) -> AsyncIterator[None]:
        key, token = f"{self._prefix}lock:{server}", secrets.token_hex(16)
        lease_ms = max(1000, int(lease_s * 1000))
        if not await self._client.set(key, token, nx=True, px=lease_ms):
            raise PassBusyError(f"an advisor pass of '{server}' is already running in another process")
        renewing = asyncio.create_task(self._renew(key, token, lease_ms), name=f"advisor-lock:{server}")
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self._client.eval(_RELEASE, 1, key, token)

    async def _renew(self, key: str, token: str, lease_ms: int) -> None:
        """Extend the lease while the pass runs, so a slow advisor model never lets a second pass in."""
        while True:
            await asyncio.sleep(lease_ms / 3000)
            if not await self._client.eval(_RENEW, 1, key, token, lease_ms):
                log.warning("the advisor lock %s was lost (Redis restarted?); the pass goes on without it", key)
                return

    async def remember_pass(self, summary: PassSummary) -> None:
        """Best effort: the store has recorded the pass already; only `npc-host status` would miss it."""
        key = f"{self._prefix}passes"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.lpush(key, summary.model_dump_json())
                pipe.ltrim(key, 0, RECENT_PASSES - 1)
                await pipe.execute()
        except redis.RedisError as exc:
            log.warning("advisor pass %d not listed for `npc-host status`: %s", summary.pass_id, exc)

    async def recent_passes(self, limit: int = 10) -> list[PassSummary]:
        found = await self._client.lrange(f"{self._prefix}passes", 0, limit - 1)
        return [PassSummary.model_validate_json(item) for item in found]

    async def aclose(self) -> None:
        await self._client.aclose()


def make_shared_state(redis_url: str | None, key_prefix: str = "") -> SharedState:
    return RedisState(redis_url, key_prefix) if redis_url else LocalState()
