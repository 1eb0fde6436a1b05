"""The hub's Redis connection: opened with the hub's timeouts, checked at once, and Redis being away turned into the
hub's own errors.

Imports redis-py and nothing of the consumer side, so `npc-host status --quiet` (a health check, through
`host.bus.health`) loads no more of the hub than this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from host.bus.errors import BusConnectionError, BusUnavailableError
from host.config import BusSettings, mask_url


def redis_client(url: str, settings: BusSettings, *, client_name: str | None = None) -> Redis:
    """A client for `url` (not connected yet); a malformed URL is a `BusConnectionError` that hides its password."""
    try:
        # No retries inside redis-py: a retried XREADGROUP would hide entries it left pending; the hub retries itself.
        return Redis.from_url(
            url,
            decode_responses=False,
            socket_connect_timeout=settings.connect_timeout_s,
            socket_timeout=settings.socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name,
        )
    except ValueError as exc:
        raise BusConnectionError(f"invalid Redis URL {mask_url(url)!r}: {exc}") from None


def redis_address(client: Redis) -> str:
    """`host:port` (or the socket path) the client talks to, for error messages: never the URL with its password."""
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}")


async def check_connection(client: Redis) -> None:
    """Fail fast, in one line naming host:port, when Redis cannot be used (the client is closed then)."""
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
        await client.aclose()
        raise BusConnectionError(f"cannot use Redis at {redis_address(client)}: {exc}") from None


@contextmanager
def redis_unavailable_as_bus_error(address: str) -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise BusUnavailableError(f"Redis at {address}: {type(exc).__name__}: {exc}") from exc
