"""Each process's health report on the Redis hub (written by the runner, read by `npc-host status`).

One hash for every process (no key scan, which walks the whole database); each field carries its deadline, and a
reader drops the fields past it. Imports redis-py and the connection helpers only: `npc-host status --quiet`, a
health check run every few seconds, loads this instead of the whole hub.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from host.bus.redis_connection import check_connection, redis_address, redis_client, redis_unavailable_as_bus_error
from host.config import BusSettings


class HealthHash:
    def __init__(self, client: Redis, key_prefix: str, address: str) -> None:
        self._client = client
        self._key = f"{key_prefix}npc-host:health"
        self._address = address

    async def put(self, process: str, report: str, ttl_s: float) -> None:
        value = json.dumps({"expires_at": time.time() + ttl_s, "report": report})
        with redis_unavailable_as_bus_error(self._address):
            await self._client.hset(self._key, process, value)

    async def reports(self) -> list[str]:
        """The reports of every process that reported within its time to live."""
        with redis_unavailable_as_bus_error(self._address):
            fields: dict[Any, Any] = await self._client.hgetall(self._key)
            now, reports, expired = time.time(), [], []
            for process, raw in fields.items():
                kept = json.loads(raw)
                if kept["expires_at"] > now:
                    reports.append(str(kept["report"]))
                else:
                    expired.append(process)
            if expired:
                await self._client.hdel(self._key, *expired)
        return reports


async def read_health_reports(url: str, settings: BusSettings, *, client_name: str | None = None) -> list[str]:
    """The live health reports on the hub at `url`, over a connection of its own that is closed again."""
    client = redis_client(url, settings, client_name=client_name)
    await check_connection(client)
    try:
        return await HealthHash(client, settings.key_prefix, redis_address(client)).reports()
    finally:
        await client.aclose()
